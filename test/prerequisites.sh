#!/bin/sh
# npm's pretest: as root, installs the Debian packages the tests run that are missing (lab/setup.sh,
# which names them); otherwise says which tests cannot run here and how to run them. The tests
# themselves skip what cannot run (requirePrerequisite in test/helpers.ts), or fail under CI=true.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
    exec sh lab/setup.sh
fi
missing=$(sh lab/setup.sh --missing)
{
    echo "npm test: not running as root. The tests that need root will be skipped (with CI=true they fail),"
    echo "each reported as 'SKIP prerequisite missing: ...'. Among them:"
    echo "  - test/lab.test.ts, the failover drill: it creates network namespaces"
    echo "  - test/relay-image.test.ts, the entrypoint's render, install-recipients and health-check runs:"
    echo "    Postfix's file ownership, port 25"
    echo "  - test/relay-image-container.test.ts: the relay image in a container, in network namespaces"
    if [ -n "$missing" ]; then
        echo "  - and every test that runs a program from these missing Debian packages: $missing"
    fi
    echo "To run them all: sudo npm test (as root it first installs the missing Debian packages), or"
    echo "sudo npm run lab:setup, then npm test as root."
} >&2
