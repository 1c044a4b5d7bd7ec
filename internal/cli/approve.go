package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// decisionFlags are the flags approve and reject share.
type decisionFlags struct {
	rule, tag, digest, by, config, table *string
}

func addDecisionFlags(fs *flag.FlagSet, env Env) decisionFlags {
	return decisionFlags{
		rule:   fs.String("rule", "", "the rule whose approval it is (required)"),
		tag:    fs.String("tag", "", "the image's tag, resolved to its digest in the rule's registry (or --digest)"),
		digest: fs.String("digest", "", "the image's digest, sha256:… (or --tag)"),
		by:     fs.String("by", "", "who decides (default: your AWS identity, else $USER)"),
		config: fs.String("config", "autodeploy.yaml", "rules file"),
		table:  fs.String("table", env.Getenv("AUTODEPLOY_TABLE"), "state table (default $AUTODEPLOY_TABLE)"),
	}
}

// check refuses bad flags before any call.
func (f decisionFlags) check() error {
	switch {
	case *f.rule == "":
		return usageError{"--rule is required"}
	case *f.tag != "" && *f.digest != "":
		return usageError{"give --tag or --digest, not both"}
	case *f.tag == "" && *f.digest == "":
		return usageError{"--tag or --digest is required: which image of the rule"}
	case *f.digest != "" && !ecrevent.IsDigest(*f.digest):
		return usageError{fmt.Sprintf("--digest %q is not sha256:<64 hex digits>", *f.digest)}
	case *f.table == "":
		return usageError{"--table or AUTODEPLOY_TABLE is required"}
	}
	return nil
}

// decision is what approve and reject resolved before they decide.
type decision struct {
	cfg      aws.Config
	central  rules.Place
	rule     *rules.Rule
	registry rules.Place
	digest   string
	by       string
	store    *gate.Store
}

// resolve loads the rule, finds the central account, and resolves --tag
// to its digest in the rule's registry. function, when not nil, is the
// deployer to find first (flag, else the stack's output), so that an
// approval is never recorded when nothing could hand it off.
func (f decisionFlags) resolve(ctx context.Context, env Env, function *string, stack string) (decision, error) {
	var d decision
	cfg, err := rules.Load(*f.config)
	if err != nil {
		return d, err
	}
	for _, r := range cfg.Rules {
		if r.Name == *f.rule {
			d.rule = r
		}
	}
	if d.rule == nil {
		return d, fmt.Errorf("no rule %q in %s", *f.rule, *f.config)
	}
	if d.rule.Approval == nil {
		return d, fmt.Errorf("rule %s has no approval: in %s; its pushes deploy without one", d.rule.Name, *f.config)
	}
	if d.cfg, err = env.AWS(ctx); err != nil {
		return d, err
	}
	// One identity call: the central account, and who decides.
	id, err := sts.NewFromConfig(d.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return d, fmt.Errorf("find the central account: get caller identity: %w", err)
	}
	d.central = rules.Place{Account: aws.ToString(id.Account), Region: d.cfg.Region}
	d.by = cmp.Or(*f.by, whoOf(id, nil, env))
	d.registry = d.rule.RegistryOf(d.central)
	if function != nil && *function == "" {
		name := cmp.Or(stack, env.Getenv("AUTODEPLOY_STACK"), defaultStack)
		outputs, err := stackOutputs(ctx, cloudformation.NewFromConfig(d.cfg), name)
		if err != nil {
			return d, fmt.Errorf("find the deployer to hand the deploy to (or pass --function): %w", err)
		}
		if *function = outputs[redrive.OutputDeployerFunction]; *function == "" {
			return d, fmt.Errorf("stack %s has no output %s: deploy the current stack, or pass --function", name, redrive.OutputDeployerFunction)
		}
	}
	d.digest = *f.digest
	if *f.tag != "" {
		client := awsenv.NewClients(d.cfg).ECR(d.registry.Region, d.rule.RegistryRole(d.central))
		img, err := tagImage(ctx, client, d.registry, d.rule.Repository, *f.tag)
		if err != nil {
			return d, err
		}
		d.digest = aws.ToString(img.ImageDigest)
	}
	d.store = gate.NewStore(awsenv.StateTable(d.cfg), *f.table)
	return d, nil
}

type imageDescriber interface {
	DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, optFns ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
}

// tagImage is the image tag names now in repository.
func tagImage(ctx context.Context, client imageDescriber, registry rules.Place, repository, tag string) (ecrtypes.ImageDetail, error) {
	out, err := client.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RegistryId: aws.String(registry.Account), RepositoryName: aws.String(repository),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	var notFound *ecrtypes.ImageNotFoundException
	if errors.As(err, &notFound) || (err == nil && len(out.ImageDetails) == 0) {
		return ecrtypes.ImageDetail{}, fmt.Errorf("tag %s not found in repository %s in %s: give --digest", tag, repository, registry)
	}
	if err != nil {
		return ecrtypes.ImageDetail{}, fmt.Errorf("resolve tag %s in repository %s in %s: %w", tag, repository, registry, err)
	}
	return out.ImageDetails[0], nil
}

func approve(ctx context.Context, args []string, env Env) error {
	fs := flags("approve", env)
	df := addDecisionFlags(fs, env)
	stack := fs.String("stack", "", "the stack to find the deployer in (default $AUTODEPLOY_STACK or "+defaultStack+")")
	function := fs.String("function", "", "the deployer's name or ARN, instead of the stack's")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := df.check(); err != nil {
		return err
	}
	d, err := df.resolve(ctx, env, function, *stack)
	if err != nil {
		return err
	}
	a, err := d.store.Approve(ctx, d.rule.Name, d.digest, d.by, env.Now())
	var refused *gate.RefusedError
	switch {
	case errors.As(err, &refused) && refused.Reason == gate.RefusedAlreadyApproved && refused.Approval.By == d.by:
		// The same operator again: the first hand-off may have failed after
		// the approval was recorded. Send it again; the deployer skips what
		// already runs (the hand-off's event id is the same).
		fmt.Fprintf(env.Stdout, "%s was already approved by %s at %s; handing it to the deployer again\n",
			imageOf(refused.Approval), refused.Approval.By, refused.Approval.DecidedAt.UTC().Format(time.RFC3339))
		a = refused.Approval
	case errors.As(err, &refused):
		return refusal(refused)
	case err != nil:
		return fmt.Errorf("approval of %s for rule %s not recorded: %w", d.digest, d.rule.Name, err)
	default:
		fmt.Fprintf(env.Stdout, "%s approved for rule %s by %s at %s\n", imageOf(a), a.Rule, a.By, a.DecidedAt.UTC().Format(time.RFC3339))
	}
	c := handOff(a, d.registry, d.rule)
	if err := invokeDeployer(ctx, lambda.NewFromConfig(d.cfg), *function, c); err != nil {
		return fmt.Errorf("the approval is recorded, but the deploy was not handed to the deployer: %w\nrun the same command again to hand it over", err)
	}
	fmt.Fprintf(env.Stdout, "handed to the deployer %s (event %s): it deploys to the rule's targets the usual way (holds, never-downgrade, what already runs is skipped)\n",
		*function, c.Push.EventID)
	return nil
}

// handOff is the push command an approval hands the deployer, for the
// approved rule alone (the repository's other rules took the push when it
// came): its event id is derived from the gate, so a repeated hand-off is
// the same push.
func handOff(a gate.Approval, registry rules.Place, r *rules.Rule) work.DeployPush {
	return work.DeployPush{
		Rule:   a.Rule,
		Origin: fmt.Sprintf("approval of %s for rule %s by %s", a.Digest, a.Rule, a.By),
		Push: work.Push{
			EventID: gate.HandOffID(gate.KindApproval, a.Rule, a.Digest), RegistryAccount: registry.Account, RegistryRegion: registry.Region,
			Repository: cmp.Or(a.Repository, r.Repository), Tag: a.Tag, Digest: a.Digest, PushedAt: a.PushedAt.UTC(),
		},
	}
}

type invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// invokeDeployer hands c to the deployer asynchronously, as the watcher's
// promotions do: an approval's deploy may take minutes.
func invokeDeployer(ctx context.Context, client invoker, function string, c work.Command) error {
	payload, err := work.EncodeCommand(c)
	if err != nil {
		return err
	}
	if _, err := client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(function), InvocationType: lambdatypes.InvocationTypeEvent, Payload: payload,
	}); err != nil {
		return fmt.Errorf("invoke %s: %w", function, err)
	}
	return nil
}

func reject(ctx context.Context, args []string, env Env) error {
	fs := flags("reject", env)
	df := addDecisionFlags(fs, env)
	reason := fs.String("reason", "", "why (required): it is shown wherever the digest is not deployed")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := df.check(); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageError{"--reason is required: say why, for whoever pushed the image"}
	}
	d, err := df.resolve(ctx, env, nil, "")
	if err != nil {
		return err
	}
	a, err := d.store.Reject(ctx, d.rule.Name, d.digest, d.by, *reason, env.Now())
	var refused *gate.RefusedError
	switch {
	case errors.As(err, &refused) && refused.Reason == gate.RefusedRejected && refused.Approval.By == d.by && refused.Approval.Reason == *reason:
		// The same command again (its first answer lost, say): done already.
		fmt.Fprintf(env.Stdout, "%s was already rejected for rule %s by %s at %s: %s\n", imageOf(refused.Approval), refused.Approval.Rule,
			refused.Approval.By, refused.Approval.DecidedAt.UTC().Format(time.RFC3339), refused.Approval.Reason)
		return nil
	case errors.As(err, &refused):
		return refusal(refused)
	case err != nil:
		return fmt.Errorf("rejection of %s for rule %s not recorded: %w", d.digest, d.rule.Name, err)
	}
	fmt.Fprintf(env.Stdout, "%s rejected for rule %s by %s at %s: %s\nit is not deployed by this rule; a new push asks anew\n",
		imageOf(a), a.Rule, a.By, a.DecidedAt.UTC().Format(time.RFC3339), a.Reason)
	return nil
}

// refusal is the store's refusal as the operator reads it, with what to do
// instead where there is something.
func refusal(r *gate.RefusedError) error {
	msg := "not done: " + r.Error()
	switch r.Reason {
	case gate.RefusedAlreadyApproved:
		msg += fmt.Sprintf("\nit was handed to the deployer then; should that hand-off have failed, the same command as %s (--by %s) sends it again", r.Approval.By, r.Approval.By)
	case gate.RefusedSuperseded:
		msg += "\n`autodeploy status` lists what waits for approval"
	}
	return errors.New(msg)
}

// imageOf names an approval's image: repository:tag (short digest).
func imageOf(a gate.Approval) string {
	return fmt.Sprintf("%s:%s (%s)", a.Repository, a.Tag, image("", a.Digest))
}
