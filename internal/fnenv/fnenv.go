// Package fnenv reads the environment contract shared by both functions.
package fnenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// DefaultConcurrency bounds the targets of one event deployed at once; see
// Env.Concurrency for why ten.
const DefaultConcurrency = 10

// Env is the functions' configuration.
type Env struct {
	// ConfigPath is AUTODEPLOY_CONFIG, default autodeploy.yaml beside the binary.
	ConfigPath string
	// Table is AUTODEPLOY_TABLE, the state table (required).
	Table string
	// LogLevel is LOG_LEVEL, else AWS_LAMBDA_LOG_LEVEL, else INFO.
	LogLevel slog.Level
	// Concurrency is AUTODEPLOY_CONCURRENCY, the targets of one event
	// deployed at once. Default 10: twenty targets in two waves, about 2× one
	// target (`make bench`), and no more calls in flight than the SDK keeps
	// connections for per endpoint (10), so none pays a new TLS handshake.
	// ECS's registration throttling (burst 20, then 1/s) is met by the SDK's
	// adaptive retry, whatever the concurrency.
	Concurrency int
	// NotifyTopic is AUTODEPLOY_NOTIFY_TOPIC_ARN, where the watcher sends a
	// notice per finished deployment and the deployer one per permanent
	// failure (optional: none is sent).
	NotifyTopic string
	// DeployerFunction is AUTODEPLOY_DEPLOYER_FUNCTION, to which the watcher
	// hands promoted tags (optional: ECR's own event for the tag remains).
	DeployerFunction string
	// Account is AUTODEPLOY_ACCOUNT, the central account the rules default
	// to (optional: the function's own account, asked of STS at init; the
	// stack sets it to spare that call).
	Account string
	// WorkQueueURL is AUTODEPLOY_WORK_QUEUE_URL, the central place's work
	// queue; every other target place's queue is named from it
	// (queue.NameFor). Optional for the deployer: unset, it rolls the
	// targets itself, in-process. The worker requires it.
	WorkQueueURL string
}

// Load reads the environment through getenv; executable is the running
// binary's path, for the default rules file location.
func Load(getenv func(string) string, executable string) (Env, error) {
	env := Env{
		ConfigPath:  getenv("AUTODEPLOY_CONFIG"),
		Table:       getenv("AUTODEPLOY_TABLE"),
		LogLevel:    logging.LevelFromEnv(getenv),
		Concurrency: DefaultConcurrency,

		NotifyTopic:      getenv("AUTODEPLOY_NOTIFY_TOPIC_ARN"),
		DeployerFunction: getenv("AUTODEPLOY_DEPLOYER_FUNCTION"),
		Account:          getenv("AUTODEPLOY_ACCOUNT"),
		WorkQueueURL:     getenv("AUTODEPLOY_WORK_QUEUE_URL"),
	}
	if env.ConfigPath == "" {
		env.ConfigPath = filepath.Join(filepath.Dir(executable), "autodeploy.yaml")
	}
	var errs []error
	if env.Table == "" {
		errs = append(errs, errors.New("AUTODEPLOY_TABLE is not set: name the DynamoDB state table"))
	}
	if env.Account != "" && !accountRE.MatchString(env.Account) {
		errs = append(errs, fmt.Errorf("AUTODEPLOY_ACCOUNT=%q: want a 12-digit account id", env.Account))
	}
	if env.WorkQueueURL != "" {
		// The places are not known yet (the rules file is read later): the
		// URL's shape and its name's length are what can be checked here.
		if _, err := queue.URLFor(env.WorkQueueURL, rules.Place{}, rules.Place{}); err != nil {
			errs = append(errs, fmt.Errorf("AUTODEPLOY_WORK_QUEUE_URL: %w", err))
		}
	}
	if v := getenv("AUTODEPLOY_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 20 {
			errs = append(errs, fmt.Errorf("AUTODEPLOY_CONCURRENCY=%q: want a whole number from 1 to 20", v))
		} else {
			env.Concurrency = n
		}
	}
	return env, errors.Join(errs...)
}

// Executable is os.Executable, or the program name when it cannot be found.
func Executable() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return os.Args[0]
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// Runtime is what both functions load at init.
type Runtime struct {
	Env   Env
	Log   *slog.Logger
	Rules *rules.Config
	AWS   aws.Config
	// Central is the account and region the functions run in, which rules
	// default registries and targets to.
	Central rules.Place
	// WorkQueues maps the central place and every place the rules' targets
	// name to its work queue's URL; nil when AUTODEPLOY_WORK_QUEUE_URL is
	// unset.
	WorkQueues map[rules.Place]string
}

// Init reads the environment, the rules file and the AWS SDK config. Log is
// set even when it fails, so main can say why before exiting.
func Init(ctx context.Context) (Runtime, error) {
	return initTo(ctx, os.Stdout)
}

// initTo is Init with its log lines written to out.
func initTo(ctx context.Context, out io.Writer) (Runtime, error) {
	env, err := Load(os.Getenv, Executable())
	rt := Runtime{Env: env, Log: logging.New(out, env.LogLevel)}
	if err != nil {
		return rt, err
	}
	if rt.Rules, err = rules.Load(env.ConfigPath); err != nil {
		return rt, fmt.Errorf("rules file: %w", err)
	}
	if rt.AWS, err = awsenv.Load(ctx); err != nil {
		return rt, err
	}
	rt.Central = rules.Place{Account: env.Account, Region: rt.AWS.Region}
	if rt.Central.Account == "" {
		if rt.Central.Account, err = awsenv.Account(ctx, rt.AWS); err != nil {
			return rt, fmt.Errorf("central account (set AUTODEPLOY_ACCOUNT to skip asking STS): %w", err)
		}
	}
	if err := rt.Rules.CheckOwners(rt.Central); err != nil {
		return rt, fmt.Errorf("rules file: %w", err)
	}
	if env.WorkQueueURL != "" {
		if rt.WorkQueues, err = queue.Queues(env.WorkQueueURL, rt.Central, rt.Rules.TargetPlaces(rt.Central)); err != nil {
			return rt, fmt.Errorf("AUTODEPLOY_WORK_QUEUE_URL: %w", err)
		}
	}
	return rt, nil
}
