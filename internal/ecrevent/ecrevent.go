// Package ecrevent turns an EventBridge "ECR Image Action" event into a
// deployable push, or says why the event is not one.
package ecrevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
)

// Push is one tagged image pushed to ECR, as far as deploying it goes.
type Push struct {
	EventID    string
	Account    string // the registry's account
	Region     string // the registry's region
	Time       time.Time
	Repository string
	Tag        string
	Digest     string // sha256:<64 hex>
}

// Ignored is returned for a well-formed event that is not a deployable push;
// Reason says why in words fit for a log line.
type Ignored struct {
	Reason string
}

func (e *Ignored) Error() string { return "ignored: " + e.Reason }

// IsDigest reports whether s is an image digest as ECR writes it:
// sha256:<64 lower-case hex digits>.
func IsDigest(s string) bool { return digestRE.MatchString(s) }

var (
	digestRE  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	tagRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
)

// artifactTags are the tags cosign and other OCI tools push beside images.
func artifactTags() []string { return []string{"sha256-*.sig", "*.att", "*.sbom"} }

// isImageConfig reports the artifact media types of runnable images;
// anything else (Helm charts, signatures, SBOMs…) is not deployable.
func isImageConfig(mediaType string) bool {
	switch mediaType {
	case "application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json":
		return true
	}
	return false
}

// isImageIndex reports the manifest media types of a multi-arch image (what
// `docker buildx --platform a,b` pushes under the tag): ECS picks the
// platform from it, so it is deployable whatever the artifact type says.
func isImageIndex(manifestMediaType string) bool {
	switch manifestMediaType {
	case "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}

// Unrunnable says why a tagged image is not one to run — a signature or
// attestation tag, or an artifact that is not a container image — or ""
// when it is. Push events and registry listings are judged alike.
func Unrunnable(tag, manifestMediaType, artifactMediaType string) string {
	for _, g := range artifactTags() {
		if ok, _ := path.Match(g, tag); ok {
			return fmt.Sprintf("tag %s is a signature or attestation artifact", tag)
		}
	}
	if isImageIndex(manifestMediaType) {
		return ""
	}
	if artifactMediaType != "" && !isImageConfig(artifactMediaType) {
		return fmt.Sprintf("artifact media type %s is not a container image", artifactMediaType)
	}
	return ""
}

// mediaTypes are the newer detail fields aws-lambda-go does not model yet.
type mediaTypes struct {
	Detail struct {
		ManifestMediaType string `json:"manifest-media-type"`
		ArtifactMediaType string `json:"artifact-media-type"`
	} `json:"detail"`
}

// Parse reads one event. A malformed or foreign event is an error; a valid
// event that is not a deployable push is an *Ignored error.
func Parse(data []byte) (Push, error) {
	var ev events.ECRImageActionEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return Push{}, fmt.Errorf("malformed ECR event: %w", err)
	}
	var media mediaTypes
	if err := json.Unmarshal(data, &media); err != nil {
		return Push{}, fmt.Errorf("malformed ECR event: %w", err)
	}
	if ev.Source != "aws.ecr" || ev.DetailType != "ECR Image Action" {
		return Push{}, fmt.Errorf("not an ECR Image Action event: source %q, detail-type %q", ev.Source, ev.DetailType)
	}
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"id", ev.ID}, {"account", ev.Account}, {"region", ev.Region},
		{"detail.repository-name", ev.Detail.RepositoryName},
		{"detail.action-type", ev.Detail.ActionType}, {"detail.result", ev.Detail.Result},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if ev.Time.IsZero() {
		missing = append(missing, "time")
	}
	if len(missing) > 0 {
		return Push{}, fmt.Errorf("malformed ECR event %s: missing %v", ev.ID, missing)
	}
	if !accountRE.MatchString(ev.Account) {
		return Push{}, fmt.Errorf("malformed ECR event %s: account %q is not a 12-digit id", ev.ID, ev.Account)
	}
	d := ev.Detail
	p := Push{EventID: ev.ID, Account: ev.Account, Region: ev.Region, Time: ev.Time,
		Repository: d.RepositoryName, Tag: d.ImageTag, Digest: d.ImageDigest}
	if reason := ignoreReason(d, media); reason != "" {
		return p, &Ignored{Reason: reason}
	}
	return p, nil
}

func ignoreReason(d events.ECRImageActionEventDetailType, media mediaTypes) string {
	switch {
	case d.ActionType != "PUSH":
		return fmt.Sprintf("action %s is not a push", d.ActionType)
	case d.Result != "SUCCESS":
		return fmt.Sprintf("push result is %s", d.Result)
	case d.ImageTag == "":
		return "pushed by digest, without a tag"
	case !tagRE.MatchString(d.ImageTag):
		return fmt.Sprintf("tag %q is not a valid image tag", d.ImageTag)
	case !digestRE.MatchString(d.ImageDigest):
		return fmt.Sprintf("digest %q is not sha256:<64 hex>", d.ImageDigest)
	}
	return Unrunnable(d.ImageTag, media.Detail.ManifestMediaType, media.Detail.ArtifactMediaType)
}

// IsIgnored reports whether err says the event is not a deployable push.
func IsIgnored(err error) (*Ignored, bool) {
	var ig *Ignored
	ok := errors.As(err, &ig)
	return ig, ok
}

// Registry is the registry host of the push.
func (p Push) Registry() string {
	return RegistryHost(p.Account, p.Region)
}

// RegistryHost is the ECR registry host of an account in a region.
func RegistryHost(account, region string) string {
	suffix := "amazonaws.com"
	if ecsarn.Partition(region) == "aws-cn" {
		suffix = "amazonaws.com.cn"
	}
	return fmt.Sprintf("%s.dkr.ecr.%s.%s", account, region, suffix)
}

// Repo is the image repository reference, without tag or digest.
func (p Push) Repo() string { return p.Registry() + "/" + p.Repository }

// ByDigest is the image pinned by digest; ByTag is the image by tag.
func (p Push) ByDigest() string { return p.Repo() + "@" + p.Digest }
func (p Push) ByTag() string    { return p.Repo() + ":" + p.Tag }
