// Package cli is the operator's `autodeploy` command: validate a rules
// file, plan what an event would do, read a service's history, roll back.
package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

const usage = `autodeploy: operate ecr-autodeploy

Usage:
  autodeploy validate [--account A --region R] [--output text|json] [FILE]
                                                             check a rules file (default autodeploy.yaml), owners as the
                                                             functions check them where they run
  autodeploy plan (--event FILE|- | --rule R --tag T) [--config FILE] [--output text|json]
                                                             what an ECR event (a file, - for stdin, or a Lambda failure
                                                             record copied from a dead-letter queue) or the rule's image
                                                             under that tag would deploy, decided as the deployer does (read-only AWS
                                                             calls; holds and gates from the table: waits for approval,
                                                             waits for its scan, blocked), and what the next clean-up
                                                             of its targets' families would remove
  autodeploy history --cluster C --service S [--limit N] [--output text|json]
                                                             recent deploys, rollbacks, holds and resumes, newest first
  autodeploy rollback --cluster C --service S [--to REV] [--no-hold] [--dry-run] [--force]
                                                             redeploy the previous (or named) ACTIVE revision, and hold;
                                                             never forward without --force; an ECS-native deployment
                                                             in flight is rolled back through ECS instead
  autodeploy continue --cluster C --service S [--hook ID]    continue an ECS-native deployment paused at a PAUSE hook
                                                             (the notice's hook id: a repeat sends nothing)
  autodeploy hold --cluster C --service S --reason TEXT [--force]
                                                             stop pushes, promotions and sweeps on a service
  autodeploy resume --cluster C --service S                  let them move it again
  autodeploy status [--config FILE] [--output text|json]     each target: rollout kind and stage, running, newest, in
                                                             sync or not, last outcome; per family, what the next
                                                             clean-up would deregister; approvals, scans and bakes
                                                             that are open
  autodeploy approve --rule R (--tag T | --digest D) [--by NAME] [--function NAME]
                                                             approve a digest that waits for approval, and hand its
                                                             deploy to the deployer (again, when you approved it before)
  autodeploy reject --rule R (--tag T | --digest D) --reason TEXT [--by NAME]
                                                             refuse it: it is not deployed by the rule
  autodeploy reconcile [--config FILE] [--dry-run] [--wait] [--output json]
                                                             run a sweep from here, as the schedule does (its deploys,
                                                             then clean-up); --wait follows each deploy to its end
  autodeploy wait --cluster C --service S [--digest D] [--timeout 30m] [--output json]
                                                             follow the latest deployment (or the digest's) to its end:
                                                             exit 0 completed, 1 failed or rolled back, 3 timed out
  autodeploy redrive [--queue push|deployer|work] [--dry-run] send parked events and work items back

AWS access uses the standard SDK environment (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL…);
history, rollback, hold, resume, status, reconcile, approve, reject, wait and plan read the state
table from --table or AUTODEPLOY_TABLE (plan decides without it, and says so; validate, continue
and redrive need none); redrive and approve read the deployer (and redrive the queues) from the
stack's outputs (--stack, AUTODEPLOY_STACK). --output json prints one JSON document (README
"Operate" shows each shape). autodeploy --version prints the version and commit.
Exit codes: 0 done, 1 failed or refused, 2 usage (a bad or missing flag, no AWS region);
wait also 3, timed out, and 130, interrupted.
Run 'autodeploy COMMAND -h' for a command's flags.
`

// Env is what the commands get from outside.
type Env struct {
	Stdout, Stderr io.Writer
	// Stdin is what plan --event - reads; nil: none.
	Stdin  io.Reader
	Getenv func(string) string
	// AWS loads the SDK config; tests aim it at an emulator.
	AWS func(ctx context.Context) (aws.Config, error)
	Now func() time.Time
	// ECS, when set, wraps each ECS client the commands make (tests answer
	// the service-deployment calls, which moto lacks, from a fake); nil:
	// the SDK's client as it is.
	ECS func(*ecs.Client) ECS
}

// Run runs one command and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(env.Stdout, versionLine(debug.ReadBuildInfo()))
		return 0
	}
	commands := map[string]func(context.Context, []string, Env) error{
		"validate": validate, "plan": plan, "history": showHistory, "rollback": rollback, "redrive": redriveCmd,
		"hold": hold, "resume": resume, "status": status, "reconcile": reconcileCmd, "continue": continueCmd,
		"approve": approve, "reject": reject, "wait": waitCmd,
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "autodeploy: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	ctx, sc := withScope(ctx)
	env.AWS = regionRequired(env.AWS)
	err := cmd(ctx, args[1:], env)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(env.Stderr, "autodeploy %s: %v\n", args[0], err)
		return 2
	case exitCodeOf(err) != 0: // wait's timed out (3)
		fmt.Fprintf(env.Stderr, "autodeploy %s: %v\n", args[0], err)
		return exitCodeOf(err)
	}
	// No SDK error reaches the terminal as the SDK words it.
	fmt.Fprintf(env.Stderr, "autodeploy %s: %s\n", args[0], explain(err, *sc))
	return 1
}

// errNoRegion is returned, with the loaded config, when neither the
// environment nor the profile names a region: a call would go nowhere, or
// build state keys such as 123456789012//prod/web.
var errNoRegion = usageError{"no AWS region: set AWS_REGION or pass --region"}

// regionRequired loads the SDK config and refuses one without a region
// (before any call); serviceFlags.resolve lets --region fill it.
func regionRequired(load func(context.Context) (aws.Config, error)) func(context.Context) (aws.Config, error) {
	return func(ctx context.Context) (aws.Config, error) {
		cfg, err := load(ctx)
		if err == nil && cfg.Region == "" {
			return cfg, errNoRegion
		}
		return cfg, err
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func flags(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("autodeploy "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}

// serviceFlags are the flags the per-service commands share.
type serviceFlags struct {
	cluster, service, account, region *string
	// table is nil for a command that writes no state (continue).
	table *string
}

func addServiceFlags(fs *flag.FlagSet, env Env) serviceFlags {
	sf := addTargetFlags(fs)
	sf.table = fs.String("table", env.Getenv("AUTODEPLOY_TABLE"), "state table (default $AUTODEPLOY_TABLE)")
	return sf
}

// addTargetFlags are the service's flags without the state table.
func addTargetFlags(fs *flag.FlagSet) serviceFlags {
	return serviceFlags{
		cluster: fs.String("cluster", "", "ECS cluster name (required)"),
		service: fs.String("service", "", "ECS service name (required)"),
		account: fs.String("account", "", "the service's account (default: the caller's)"),
		region:  fs.String("region", "", "the service's region (default: the SDK's)"),
	}
}

// args repeats the service's flags, for a command to print.
func (f serviceFlags) args() string {
	return fmt.Sprintf("--cluster %s --service %s", *f.cluster, *f.service)
}

// resolve checks the flags and fills account and region from AWS.
func (f serviceFlags) resolve(ctx context.Context, env Env) (aws.Config, string, error) {
	if *f.cluster == "" || *f.service == "" {
		return aws.Config{}, "", usageError{"--cluster and --service are required"}
	}
	if f.table != nil && *f.table == "" {
		return aws.Config{}, "", usageError{"--table or AUTODEPLOY_TABLE is required"}
	}
	// An ARN names the same service as its name (the deployer's lock and
	// history use names), and gives the account and region.
	for _, flag := range []*string{f.cluster, f.service} {
		if a, err := ecsarn.Parse(*flag); err == nil {
			*flag = a.Name
			*f.account = cmp.Or(*f.account, a.Account)
			*f.region = cmp.Or(*f.region, a.Region)
		}
	}
	cfg, err := env.AWS(ctx)
	if err != nil && !(errors.Is(err, errNoRegion) && *f.region != "") {
		return aws.Config{}, "", err
	}
	if *f.region != "" {
		cfg.Region = *f.region
	}
	setScope(ctx, *f.cluster, *f.service, *f.account, cfg.Region)
	if *f.account == "" {
		account, err := awsenv.Account(ctx, cfg)
		if err != nil {
			return aws.Config{}, "", fmt.Errorf("find the account (or pass --account): %w", err)
		}
		*f.account = account
	}
	setScope(ctx, *f.cluster, *f.service, *f.account, cfg.Region)
	return cfg, history.ServiceKey(*f.account, cfg.Region, *f.cluster, *f.service), nil
}
