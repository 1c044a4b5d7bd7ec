// Package promote tags a deployed digest in ECR and hands the new tag to
// the deployer directly, as a push command (work.DeployPush), without
// waiting for ECR to emit an event for the re-tag (it may not); the
// deployer's idempotency makes a second delivery harmless. It also asks the
// deployer for a sweep (work.Sweep). Neither is a forged AWS event.
package promote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// ECR is what a promotion needs of ECR.
type ECR interface {
	BatchGetImage(ctx context.Context, in *ecr.BatchGetImageInput, optFns ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error)
	PutImage(ctx context.Context, in *ecr.PutImageInput, optFns ...func(*ecr.Options)) (*ecr.PutImageOutput, error)
}

// Invoker starts the deployer asynchronously.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Promoter retags images and hands them to the deployer.
type Promoter struct {
	// ECR returns the client for a registry's region, through role ("" for
	// the function's own credentials).
	ECR func(region, role string) ECR
	// Central is where the functions run: a registry in another account is
	// reached through its registry stack's role.
	Central rules.Place
	// Lambda and DeployerFunction hand the new tag to the deployer; with no
	// function name the hand-off is skipped (ECR's own event, if any, remains).
	Lambda           Invoker
	DeployerFunction string
	Now              func() time.Time
}

// manifestTypes are the manifests a tag may point at.
func manifestTypes() []string {
	return []string{
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
	}
}

// Promote tags rec's digest with tag (already-tagged is fine) and hands the
// tag to the deployer.
func (p *Promoter) Promote(ctx context.Context, rec history.Record, tag string) error {
	registry := rules.Place{Account: rec.RegistryAccount, Region: rec.RegistryRegion}
	client := p.ECR(rec.RegistryRegion, rules.PromoteRole(registry, p.Central))
	got, err := client.BatchGetImage(ctx, &ecr.BatchGetImageInput{
		RegistryId:         aws.String(rec.RegistryAccount),
		RepositoryName:     aws.String(rec.Repository),
		ImageIds:           []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(rec.Digest)}},
		AcceptedMediaTypes: manifestTypes(),
	})
	if err != nil {
		return fmt.Errorf("get manifest of %s@%s: %w", rec.Repository, rec.Digest, err)
	}
	if len(got.Images) == 0 {
		reason := "not found"
		if len(got.Failures) > 0 {
			reason = aws.ToString(got.Failures[0].FailureReason)
		}
		return fmt.Errorf("get manifest of %s@%s: %s", rec.Repository, rec.Digest, reason)
	}
	img := got.Images[0]
	_, err = client.PutImage(ctx, &ecr.PutImageInput{
		RegistryId:             aws.String(rec.RegistryAccount),
		RepositoryName:         aws.String(rec.Repository),
		ImageManifest:          img.ImageManifest,
		ImageManifestMediaType: img.ImageManifestMediaType,
		ImageDigest:            aws.String(rec.Digest),
		ImageTag:               aws.String(tag),
	})
	var exists *ecrtypes.ImageAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("tag %s@%s as %s: %w", rec.Repository, rec.Digest, tag, err)
	}
	if p.DeployerFunction == "" {
		return nil
	}
	return p.send(ctx, HandOff(rec, tag, p.Now()), fmt.Sprintf("hand %s:%s to the deployer", rec.Repository, tag))
}

// send invokes the deployer asynchronously with command c; what names it in
// an error.
func (p *Promoter) send(ctx context.Context, c work.Command, what string) error {
	payload, err := work.EncodeCommand(c)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := p.Lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(p.DeployerFunction), InvocationType: lambdatypes.InvocationTypeEvent, Payload: payload,
	}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// HandOff is the push command that hands a promotion's new tag to the
// deployer: the digest rec deployed, under tag, pushed (tagged) at at, with
// ECR's millisecond precision. Its event id is derived from the promotion
// (rule, digest, tag), so a repeated hand-off is recognisable as the same
// one in the revision's tags and the history.
func HandOff(rec history.Record, tag string, at time.Time) work.DeployPush {
	sum := sha256.Sum256([]byte(rec.Rule + "\x00" + rec.Digest + "\x00" + tag))
	return work.DeployPush{
		Origin: fmt.Sprintf("promotion of rule %s to tag %s", rec.Rule, tag),
		Push: work.Push{
			EventID: "autodeploy-promote-" + hex.EncodeToString(sum[:8]), RegistryAccount: rec.RegistryAccount,
			RegistryRegion: rec.RegistryRegion, Repository: rec.Repository, Tag: tag, Digest: rec.Digest,
			PushedAt: at.UTC().Truncate(time.Millisecond),
		},
	}
}

// HandOffPush hands the deployer push, a digest a gate let through for
// rule (a scan that came clean), as a push command for that rule alone
// whose origin says why (the gates' HandOff). Unlike a promotion's hand-off
// it is the only way the push deploys, so without a deployer function it is
// an error, not skipped.
func (p *Promoter) HandOffPush(ctx context.Context, push ecrevent.Push, rule, origin string) error {
	what := fmt.Sprintf("hand %s:%s (%s) to the deployer for rule %s", push.Repository, push.Tag, push.Digest, rule)
	if p.DeployerFunction == "" {
		return errors.New(what + ": no deployer function configured")
	}
	return p.send(ctx, work.DeployPush{Origin: origin, Push: work.PushOf(push), Rule: rule}, what)
}

// ErrNoDeployer says a request went nowhere: no deployer function is
// configured (AUTODEPLOY_DEPLOYER_FUNCTION).
var ErrNoDeployer = errors.New("no deployer function to ask (AUTODEPLOY_DEPLOYER_FUNCTION is unset): the schedule's next sweep comes instead")

// RequestSweep asks the deployer for a sweep now with a sweep command whose
// id names why. With no deployer function it sends nothing and says so
// (ErrNoDeployer), so no one logs a request that was never made.
func (p *Promoter) RequestSweep(ctx context.Context, rec history.Record, why string) error {
	if p.DeployerFunction == "" {
		return ErrNoDeployer
	}
	c := work.Sweep{ID: why, Origin: fmt.Sprintf("watcher, for rule %s on %s/%s (deployment %s)", rec.Rule, rec.Cluster, rec.Service, rec.DeploymentID)}
	return p.send(ctx, c, "ask the deployer for a sweep ("+why+")")
}
