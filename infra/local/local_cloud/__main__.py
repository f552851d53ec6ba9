"""`python -m local_cloud` (what `make run` calls): the whole gateway on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading

from local_cloud.cloud import LocalCloud, LocalCloudConfig, LocalCloudError


def main(argv: list[str] | None = None) -> int:
    defaults = LocalCloudConfig()
    parser = argparse.ArgumentParser(prog="python -m local_cloud", description=__doc__)
    parser.add_argument("--port", type=int, default=defaults.api_port, help="API port (default 8080)")
    parser.add_argument("--aws-port", type=int, default=defaults.aws_port, help="moto port (default 4566)")
    parser.add_argument("--provider-port", type=int, default=defaults.provider_port,
                        help="local provider port (default 8787)")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency,
                        help="most sandboxes per function (default 4)")
    parser.add_argument("--stage", default=defaults.stage)
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE",
                        help="CDK context for the synthesis, e.g. -c authorizer_cache_ttl_s=10 (JSON values allowed)")
    args = parser.parse_args(argv)
    context = {}
    for item in args.context:
        key, _, value = item.partition("=")
        try:
            context[key] = json.loads(value)
        except ValueError:
            context[key] = value
    config = LocalCloudConfig(api_port=args.port, aws_port=args.aws_port, provider_port=args.provider_port,
                              concurrency=args.concurrency, stage=args.stage, context=context)
    cloud = LocalCloud(config, progress=lambda line: print(line, flush=True))
    try:
        cloud.start()
    except LocalCloudError as exc:
        print(f"\nThe local cloud did not start: {exc}", file=sys.stderr)
        return 1
    info = cloud.info()
    info_path = config.state_dir / "endpoints.json"
    info_path.write_text(json.dumps(info, indent=2))
    print(f"""
DeepSeek Gateway is running locally (ready in {info['startup_seconds']} s).

  API base URL   {info['api_base_url']}
  AWS endpoint   {info['aws_endpoint_url']}   (region {info['region']})
  providers      {', '.join(f'{k}: {v}' for k, v in info['providers'].items())}
  demo API key   {info['keys'].get('demo', '(no tenants table in the template)')}   (tenant "demo": chat, batch, files)
  admin API key  {info['keys'].get('admin', '-')}   (dsg-admin --local ...)
  OAuth2 token   {info['oidc']['mint_token']}
  endpoints file {info_path}
  function logs  {config.state_dir / 'logs'}

  OpenAI SDK     {info['examples']['openai_sdk']}
  Anthropic SDK  {info['examples']['anthropic_sdk']}
  curl           {info['examples']['curl']}
  upload         {info['examples']['s3_upload']}
  fail DeepSeek  {info['examples']['fail_deepseek']}

Ctrl-C stops everything.""", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        # Not one untimed wait: a signal the kernel hands to another thread would never wake it, and the
        # handler runs only when the main thread runs Python again.
        while not stopped.wait(0.2):
            pass
    print("\nstopping…", flush=True)
    cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
