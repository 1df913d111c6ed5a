"""Customer notices (issue 13): what the contracts say the customer is told, in their language,
as plain text and simple HTML, sent through the provider's relay once per event.

- `facts`: what a notice says, from its change and the fleet;
- `render`: the words, per kind and language (fr, en): the templates and their rendering live in
  `vpsfleet_agents.notices`, shared with the programs shipped to machines (the traffic job's
  `traffic_throttle` notice is rendered on the hypervisor host from the same templates);
- `message`: the e-mail (its shape from `vpsfleet_agents.notices.message`); `relay`: sending
  it; `events` and `record`: once per event;
- `sender`: the deploy's notice step; `samples`: the rendered samples of docs/notices/.
"""
