package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// SSM is the Parameter Store call publishing makes.
type SSM interface {
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
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
		name := rule.Publish.Parameter(ecsarn.Name(t.Cluster), ecsarn.Name(t.Service), c)
		_, err := client.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(name), Value: aws.String(image), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
			Description: aws.String("Image ecr-autodeploy runs in " + t.Cluster + "/" + t.Service + " (" + c + "); read it instead of naming an image"),
		})
		if err != nil {
			err = fmt.Errorf("publish %s to %s: %w", image, name, err)
			log.ErrorContext(ctx, "publish", "rule", rule.Name, "cluster", t.Cluster, "service", t.Service, "container", c,
				"parameter", name, "image", image, "outcome", "failed", "reason", err.Error())
			if first == nil {
				first = err
			}
			continue
		}
		log.InfoContext(ctx, "publish", "rule", rule.Name, "cluster", t.Cluster, "service", t.Service, "container", c,
			"parameter", name, "image", image, "outcome", "published")
	}
	return first
}

// publish publishes a deployed (or, on this event's retry, already running)
// image when the rule asks for it, and folds a failure into the result.
func (d *Deployer) publish(ctx context.Context, push ecrevent.Push, rule *rules.Rule, t rules.Target, res *Result) {
	if rule.Publish == nil || d.SSM == nil || len(res.Containers) == 0 {
		return
	}
	err := Publish(ctx, d.SSM(res.Region, t.RoleFor(d.Central)), d.Log, rule, t, res.Containers, res.Image)
	if err == nil {
		res.Published = "written"
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
