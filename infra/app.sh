#!/bin/sh
# What cdk.json runs: the app on the project's own environment (.venv, made by `make setup`), so `npx aws-cdk@2
# deploy` works from a shell where that environment is not activated.
cd "$(dirname "$0")/.." || exit 2
if [ -x .venv/bin/python ]; then
  exec .venv/bin/python app.py "$@"
fi
if python3 -c "import aws_cdk" 2>/dev/null; then
  exec python3 app.py "$@"
fi
echo "error: the CDK app needs the project's environment: run 'make setup' in $(pwd) first" >&2
exit 2
