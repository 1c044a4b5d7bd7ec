# ecr-autodeploy: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
ARCH    ?= arm64
PYTHON  ?= python3
VENV    := .venv
BIN     := $(CURDIR)/.bin
FUNCTIONS := deployer watcher worker
DIST    ?= dist

RIE_VERSION         := v0.0.0-20261030222936-bef5c4ba774d
STATICCHECK_VERSION := v0.8.2
# A count, not a duration: a time budget can fail with "context deadline exceeded" on a
# loaded machine (golang/go#75804). `make fuzz FUZZTIME=1m` still runs a long local session.
FUZZTIME            ?= 20000x
BENCHTIME           ?= 5x
# BenchmarkInit's cold starts per rules file: its budgets hold their median.
INITRUNS            ?= 15x

# CDK's jsii kernel runs on Node; Node 20 would print an end-of-life banner on every call.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AUTODEPLOY_MOTO_SERVER := $(CURDIR)/$(VENV)/bin/moto_server
export AUTODEPLOY_RIE := $(BIN)/aws-lambda-rie

CONFIG  ?= autodeploy.yaml
COMMA   := ,
# Optional stack context: an address for alarms, one for deployment notices, a Slack channel for
# both, each target place's worker invocations at once (2–1000, default 2).
CONTEXT  = $(if $(ALARM_EMAIL),-c alarmEmail=$(ALARM_EMAIL)) $(if $(NOTIFY_EMAIL),-c notifyEmail=$(NOTIFY_EMAIL)) \
           $(if $(ACCOUNT),-c account=$(ACCOUNT)) $(if $(REGION),-c region=$(REGION)) \
           $(if $(SLACK_WORKSPACE),-c slackWorkspaceId=$(SLACK_WORKSPACE)) $(if $(SLACK_CHANNEL),-c slackChannelId=$(SLACK_CHANNEL)) \
           $(if $(WORK_CONCURRENCY),-c workConcurrency=$(WORK_CONCURRENCY))
# The CDK CLI is installed outside the Go module's tree (go ./... would read its templates).
CDK_CLI := $(CURDIR)/.cache/cdk-cli
CDK     := cd infra && $(CDK_CLI)/node_modules/.bin/cdk

.PHONY: help tools demo-tools build test unit fuzz lint bench demo demo-accounts sandbox sandbox-stop synth diff deploy cdk-cli clean

# The help text is the comment after "## ", with $(ARCH) said as its value.
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/\$$(ARCH)/$(ARCH)/g' | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

tools: demo-tools $(VENV)/.installed $(BIN)/staticcheck ## install the pinned test tools (moto, cfn-lint, aws-lambda-rie, staticcheck)
	@$(GO) mod download

# What the demo and the sandbox run, and no more: moto and aws-lambda-rie.
demo-tools: $(VENV)/.moto $(BIN)/aws-lambda-rie

$(VENV)/.moto: tools/moto-requirements.txt
	@echo "==> installing moto into $(VENV) (tools/moto-requirements.txt)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/moto-requirements.txt
	@touch $@

$(VENV)/.installed: tools/requirements.txt $(VENV)/.moto
	@echo "==> installing cfn-lint into $(VENV) (tools/requirements.txt)"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	@touch $@

$(BIN)/aws-lambda-rie:
	@echo "==> installing aws-lambda-rie $(RIE_VERSION) into .bin"
	GOBIN=$(BIN) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

$(BIN)/staticcheck:
	@echo "==> installing staticcheck $(STATICCHECK_VERSION) into .bin"
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

build: ## build dist/<function>/bootstrap for Lambda (linux/$(ARCH); ARCH=amd64 for local runs)
	@for fn in $(FUNCTIONS); do \
	  echo "==> $(DIST)/$$fn/bootstrap (linux/$(ARCH))"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w" \
	    -o $(DIST)/$$fn/bootstrap ./functions/$$fn; \
	done

test: tools lint unit fuzz ## everything: lint, unit and emulator tests, short fuzz runs
	@echo "==> all tests passed"

unit: tools ## unit and integration tests (moto, aws-lambda-rie), emulators required
	@# -p 3: the suites wait on emulators (moto, aws-lambda-rie, jsii's node) as much as they compute; three at once
	@# keeps 2 cores busy and make test under ten minutes.
	AUTODEPLOY_REQUIRE_EMULATOR=1 $(GO) test -race -count=1 -p 3 ./...

fuzz: ## short bounded fuzz runs of event parsing and tag matching
	$(GO) test ./internal/ecrevent -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/rules -run '^$$' -fuzz '^FuzzMatches$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/ecsevent -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/codedeployevent -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

lint: $(BIN)/staticcheck ## gofmt, go vet, staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

bench: tools ## micro-benchmarks, then the deployer under aws-lambda-rie beside its bare AWS calls (README: Benchmarks)
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
	$(GO) test -run '^$$' -bench 'SideBySide|SweepInSync' -benchtime $(BENCHTIME) -timeout 30m ./functions/deployer
	$(GO) test -run '^$$' -bench 'Init' -benchtime $(INITRUNS) -timeout 30m ./functions/deployer
	$(GO) test -run '^$$' -bench 'QueuedFanOut|Sweep1000' -benchtime 2x -timeout 30m ./functions/deployer

demo: demo-tools ## run the deployer locally against moto: no AWS account needed
	@$(MAKE) --no-print-directory build ARCH=$$($(GO) env GOARCH) DIST=.cache/local
	$(GO) run ./cmd/demo -deployer .cache/local/deployer/bootstrap -watcher .cache/local/watcher/bootstrap -worker .cache/local/worker/bootstrap

demo-accounts: demo-tools ## the same, across accounts: a registry account, a target account in another region
	@$(MAKE) --no-print-directory build ARCH=$$($(GO) env GOARCH) DIST=.cache/local
	$(GO) run ./cmd/demo -accounts -deployer .cache/local/deployer/bootstrap -watcher .cache/local/watcher/bootstrap

synth: build ## write the CloudFormation templates for CONFIG (default autodeploy.yaml) to cdk.out/ (ACCOUNT=… REGION=…: the central stack's)
	@# An earlier run's templates (another CONFIG's stacks) must not be listed as this one's.
	rm -rf cdk.out
	cd infra && CDK_OUTDIR=$(CURDIR)/cdk.out \
	  CDK_CONTEXT_JSON='{"config":"$(abspath $(CONFIG))","dist":"$(CURDIR)/dist"$(if $(ACCOUNT),$(COMMA)"account":"$(ACCOUNT)")$(if $(REGION),$(COMMA)"region":"$(REGION)")}' $(GO) run .
	@ls cdk.out/*.template.json | sed 's/^/==> /'

sandbox: demo-tools ## start moto in the background with the demo's services and rules, and print the environment to paste
	$(GO) run ./cmd/sandbox start

sandbox-stop: ## stop the sandbox `make sandbox` started
	$(GO) run ./cmd/sandbox stop

cdk-cli:
	mkdir -p $(CDK_CLI) && cp infra/package.json infra/package-lock.json $(CDK_CLI)/
	npm ci --prefix $(CDK_CLI) --no-audit --no-fund --loglevel=error

diff: build cdk-cli ## cdk diff against the account of your AWS credentials
	$(CDK) diff --all -c config=$(abspath $(CONFIG)) -c dist=$(CURDIR)/dist $(CONTEXT)

deploy: build cdk-cli ## cdk deploy every stack, the central one first (ALARM_EMAIL=…, NOTIFY_EMAIL=…, ACCOUNT=… REGION=…, SLACK_WORKSPACE=… SLACK_CHANNEL=…, WORK_CONCURRENCY=N)
	$(CDK) deploy --all --require-approval broadening -c config=$(abspath $(CONFIG)) -c dist=$(CURDIR)/dist $(CONTEXT)

clean: ## remove build output and installed tools (and stop a sandbox first: its state is in .cache)
	@if [ -e .cache/sandbox/state.json ]; then $(GO) run ./cmd/sandbox stop; fi
	rm -rf dist .cache cdk.out $(VENV) $(BIN)
