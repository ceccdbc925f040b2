"""A faithful fake of the upstream video APIs (UPSTREAM.md §A, §B), with fault injection.

On the `evolink` wire (the default): `POST /v1/videos/generations`, `GET /v1/tasks[/{id}]`,
result videos at `GET /results/{id}.mp4`, and callbacks POSTed to the task's
`callback_url` when it ends.

Per-task faults, written anywhere in the prompt (an unknown directive is a 400):
    #sim:fail[=CODE]       fail with error.code CODE (default generation_failed;
                           a numeric CODE is sent as an integer)
    #sim:fail_bare         fail without an `error` object
    #sim:stuck             stay `processing` until an admin call ends the task
    #sim:drop_callback     send no callback
    #sim:dup_callback[=N]  send the terminal callback N times (default 2)
    #sim:delay_callback=S  wait S seconds before the first callback attempt
    #sim:early_callback    end at once; the first callback attempt completes before
                           the create answer (which still says `pending`) is sent
    #sim:out_of_order      after the terminal callback, send a stale `processing` one
    #sim:duration=S        report S seconds as task_info.video_duration

Global faults: `POST /_sim/faults` with one rule per scope, e.g.
    {"create": {"status": 503, "count": 2}}
    {"create": {"status": 429, "retry_after": 1, "count": 1}}
    {"create": {"status": 500, "create_anyway": true}}    task created, then 500
    {"create": {"timeout": true, "count": 1}}             task created, answer held
    {"query": {"status": 500, "count": 3}}  {"query": {"timeout": true, "hang_s": 5}}
    {"result": {"status": 503}}             {"callbacks": {"drop": true, "delay_s": 1}}
    {"list": {"status": 503}}               the aggregator's task list only
`count` = the next N matches, omitted = until `DELETE /_sim/faults`. Also
`GET /_sim/faults`, `GET /_sim/tasks[/{id}]` and
`POST /_sim/tasks/{id}/complete|fail|cancel`.

Faults, tasks and `/_sim` are wire-neutral; `SimulatorConfig.wire` picks the dialect
(see `wire` and `wires/`): `evolink`, the aggregator API (§A), or `kling`, the official
Kling API (§B): JWT auth, `{code, message, request_id, data}` envelopes, unique
`external_task_id`s, and a callback (one attempt) on every status change, with
`dup_callback`/`out_of_order` acting on the terminal one; its request faults may also
name a Kling `code` and use HTTP 200 (see `wires.kling`).
"""

from app.simulator.app import create_simulator_app
from app.simulator.config import SimulatorConfig

__all__ = ["SimulatorConfig", "create_simulator_app"]
