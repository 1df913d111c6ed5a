"""Customer notices (issue 13): what the contracts say the customer is told, in their language,
as plain text and simple HTML, sent through the provider's relay once per event.

- `facts`: what a notice says, from its change and the fleet;
- `render` and `templates/`: the words, per kind and language (fr, en);
- `message`: the e-mail; `relay`: sending it; `events` and `record`: once per event;
- `sender`: the deploy's notice step; `samples`: the rendered samples of docs/notices/.
"""
