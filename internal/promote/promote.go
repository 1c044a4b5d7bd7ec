// Package promote tags a deployed digest in ECR and hands the new tag to
// the deployer directly, without waiting for ECR to emit an event for the
// re-tag (it may not); the deployer's idempotency makes a second delivery
// harmless.
package promote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
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
	event, err := PushEvent(rec, tag, p.Now())
	if err != nil {
		return err
	}
	return p.handOff(ctx, event, fmt.Sprintf("hand %s:%s to the deployer", rec.Repository, tag))
}

// handOff invokes the deployer asynchronously with event; what names it in
// an error.
func (p *Promoter) handOff(ctx context.Context, event []byte, what string) error {
	if _, err := p.Lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(p.DeployerFunction), InvocationType: lambdatypes.InvocationTypeEvent, Payload: event,
	}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// PushEvent is the ECR push event ECR would send for the new tag; its id is
// derived from the promotion so a repeated hand-off is recognisable.
func PushEvent(rec history.Record, tag string, at time.Time) ([]byte, error) {
	sum := sha256.Sum256([]byte(rec.Rule + "\x00" + rec.Digest + "\x00" + tag))
	id := "autodeploy-promote-" + hex.EncodeToString(sum[:8])
	return json.Marshal(map[string]any{
		"version": "0", "id": id, "detail-type": "ECR Image Action", "source": "aws.ecr",
		"account": rec.RegistryAccount, "region": rec.RegistryRegion, "time": at.UTC().Format(time.RFC3339),
		"resources": []string{},
		"detail": map[string]string{
			"result": "SUCCESS", "action-type": "PUSH", "repository-name": rec.Repository,
			"image-digest": rec.Digest, "image-tag": tag,
		},
	})
}

// RequestSweep asks the deployer for a sweep now, with the event the
// schedule sends; the id names why. With no deployer function it does
// nothing (the schedule's next sweep comes anyway).
func (p *Promoter) RequestSweep(ctx context.Context, rec history.Record, why string) error {
	if p.DeployerFunction == "" {
		return nil
	}
	event, err := json.Marshal(map[string]any{
		"version": "0", "id": why, "detail-type": "Scheduled Event", "source": "aws.events",
		"account": rec.RegistryAccount, "region": rec.RegistryRegion, "time": p.Now().UTC().Format(time.RFC3339),
		"resources": []string{}, "detail": map[string]string{},
	})
	if err != nil {
		return err
	}
	return p.handOff(ctx, event, "ask the deployer for a sweep ("+why+")")
}
