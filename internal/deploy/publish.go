package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

// SSM is the Parameter Store calls publishing makes: a write, and a read
// where the image may already be published (so a repeat writes no version).
type SSM interface {
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Publish writes image as the running image of each container to the
// rule's parameters, in the target's account and region: one call per
// container, made only after the service took the image. A failure never
// undoes the deploy: a transient one marks the result retryable (the retry
// of this event publishes again, see deployLocked), a permanent one is
// logged and notified. It returns the first error.
func Publish(ctx context.Context, client SSM, log *slog.Logger, rule *rules.Rule, t rules.Target, containers []string, image string) error {
	var first error
	for _, c := range containers {
		if err := publishOne(ctx, client, log, rule, t, c, image); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func publishOne(ctx context.Context, client SSM, log *slog.Logger, rule *rules.Rule, t rules.Target, c, image string) error {
	name := rule.Publish.Parameter(ecsarn.Name(t.Cluster), ecsarn.Name(t.Service), c)
	_, err := client.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(image), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
		Description: aws.String("Image ecr-autodeploy runs in " + t.Cluster + "/" + t.Service + " (" + c + "); read it instead of naming an image"),
	})
	if err != nil {
		err = fmt.Errorf("publish %s to %s: %w", image, name, err)
		log.ErrorContext(ctx, "publish", "rule", rule.Name, "cluster", t.Cluster, "service", t.Service, "container", c,
			"parameter", name, "image", image, "outcome", "failed", "reason", err.Error())
		return err
	}
	log.InfoContext(ctx, "publish", "rule", rule.Name, "cluster", t.Cluster, "service", t.Service, "container", c,
		"parameter", name, "image", image, "outcome", "published")
	return nil
}

// Published is what a parameter held against what runs.
type Published struct {
	Parameter string
	State     string // ok, missing or stale
}

// CheckPublished reads each container's parameter and says whether it
// names the image that runs (images: container → running image).
func CheckPublished(ctx context.Context, client SSM, rule *rules.Rule, t rules.Target, containers []string, images map[string]string) ([]Published, error) {
	var out []Published
	for _, c := range containers {
		name := rule.Publish.Parameter(ecsarn.Name(t.Cluster), ecsarn.Name(t.Service), c)
		got, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		var missing *ssmtypes.ParameterNotFound
		switch {
		case errors.As(err, &missing):
			out = append(out, Published{name, "missing"})
		case err != nil:
			return out, fmt.Errorf("read %s: %w", name, err)
		case aws.ToString(got.Parameter.Value) != images[c]:
			out = append(out, Published{name, "stale"})
		default:
			out = append(out, Published{name, "ok"})
		}
	}
	return out, nil
}

// publishStale writes the parameters that do not name what runs, and only
// those: a repeat of a publish that went through writes no new version
// (Parameter Store keeps only the last 100).
func publishStale(ctx context.Context, client SSM, log *slog.Logger, rule *rules.Rule, t rules.Target, containers []string, images map[string]string) (written []Published, err error) {
	states, err := CheckPublished(ctx, client, rule, t, containers, images)
	if err != nil {
		return nil, err
	}
	for i, st := range states {
		if st.State == "ok" {
			continue
		}
		if err := publishOne(ctx, client, log, rule, t, containers[i], images[containers[i]]); err != nil {
			return written, err
		}
		written = append(written, st)
	}
	return written, nil
}

// publish publishes, under the service's lock, a deployed image (a write)
// or, on this event's retry, the image it already deployed (a write only
// where the parameter does not name it yet), when the rule asks for it, and
// folds a failure into the result. A holder that lost its lock publishes
// nothing: the new holder publishes what it runs.
func (d *Deployer) publish(ctx context.Context, push ecrevent.Push, rule *rules.Rule, t rules.Target, held history.Held, res *Result) {
	if rule.Publish == nil || d.SSM == nil || len(res.Containers) == 0 {
		return
	}
	if held.Check() != nil {
		res.Reason = strings.TrimSpace(res.Reason + " (not published: the lock was lost, its new holder publishes what runs)")
		return
	}
	client := d.SSM(res.Region, t.RoleFor(d.Central))
	var err error
	if res.Outcome == Deployed {
		err = Publish(ctx, client, d.Log, rule, t, res.Containers, res.Image)
		if err == nil {
			res.Published = "written"
		}
	} else {
		images := map[string]string{}
		for _, c := range res.Containers {
			images[c] = res.Image
		}
		var written []Published
		written, err = publishStale(ctx, client, d.Log, rule, t, res.Containers, images)
		if err == nil && len(written) > 0 {
			res.Published = "written"
		}
	}
	if err == nil {
		return
	}
	res.Published = "failed"
	if !IsPermanent(err) {
		res.Retryable = true
		res.Reason = strings.TrimSpace(res.Reason + " (deployed, but the image was not published; will retry to publish it)")
		return
	}
	res.Reason = strings.TrimSpace(res.Reason + " (deployed, but the image was not published: " + err.Error() + ")")
	d.notify(ctx, push, *res, notify.NotPublished, err.Error())
}

// RepairPublished puts a target's published images right, as a sweep does
// when it found them missing or stale: under the service's lock, from the
// service and task definition described then (not from the sweep's earlier
// snapshot, which a concurrent deploy may have overtaken), writing only the
// parameters that do not name what runs. It returns those it wrote.
func (d *Deployer) RepairPublished(ctx context.Context, rule *rules.Rule, t rules.Target, holder string) ([]Published, error) {
	if rule.Publish == nil || d.SSM == nil {
		return nil, nil
	}
	// A sweep's repair: the intake's read role, never the deploy role.
	at, role := t.Where(d.Central), d.ReadRole(t)
	key := history.ServiceKey(at.Account, at.Region, t.Cluster, t.Service)
	held, err := d.Services.Take(ctx, key, holder)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := held.Release(context.WithoutCancel(ctx)); err != nil {
			d.Log.WarnContext(ctx, "lock release failed", "lock", key, "error", err.Error())
		}
	}()
	client := d.ECS(at.Region, role)
	svc, err := describeService(ctx, client, t.Cluster, t.Service)
	if err != nil {
		return nil, err
	}
	running := bluegreen.RunningTaskDefinition(svc)
	td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(running),
		Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		return nil, fmt.Errorf("describe task definition %s: %w", running, err)
	}
	registry := rule.RegistryOf(d.Central)
	repo := ecrevent.Push{Account: registry.Account, Region: registry.Region, Repository: rule.Repository}.Repo()
	containers, err := taskdef.ChooseContainers(td.TaskDefinition, t.Containers, repo)
	if err != nil {
		return nil, permanent("service %s: %v", t.Service, err)
	}
	images := map[string]string{}
	for _, c := range containers {
		images[c] = taskdef.Image(td.TaskDefinition, c)
	}
	if err := held.Check(); err != nil {
		return nil, err
	}
	return publishStale(ctx, d.SSM(at.Region, role), d.Log, rule, t, containers, images)
}
