// The inspector scripts' gate: the test opens it by publishing any message on a channel, so a
// script holds a state (members present, a turn mid-stream) while the test looks at the page.

/** Attaches to channel `name`; then {opened} resolves on the first message published there. */
export async function gate(client, name) {
  const channel = client.channels.get(name);
  let open;
  const opened = new Promise((resolve) => {
    open = resolve;
  });
  await channel.subscribe(() => open());
  return { opened };
}
