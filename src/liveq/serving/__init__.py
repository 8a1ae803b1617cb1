"""The recommendation service: a trained policy behind HTTP, with a durable decision log.

* `settings`: `ServeConfig` (the command's options), `FeatureSettings` (a model's env
  settings); `model`: load a run without the simulator, the serving policy;
* `viewers`, `observe`: viewer state and its update rules, the live catalogue, retrieval
  and features (all through `liveq.features`);
* `tables`, `db`, `store`: the log's schema, engines and migrations, reads and writes;
* `policy_log`, `explain`, `service`, `app`: a decision, its explanation, the routes;
* `dashboard`: the live `/dashboard` page and the JSON it polls.
"""
