package ecrevent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file   string
		want   Push
		ignore string // substring of the ignore reason, "" for a deployable push
	}{
		{file: "ecr-push-main.json", want: Push{
			EventID: "1a0c4c1e-5b8f-4c2e-9d65-0c3e2f1a7b01", Account: "123456789012", Region: "eu-west-1",
			Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Repository: "web", Tag: "main-4f2a9c1",
			Digest: "sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c",
		}},
		{file: "ecr-push-signature.json", ignore: "signature or attestation artifact"},
		{file: "ecr-push-by-digest.json", ignore: "pushed by digest, without a tag"},
		{file: "ecr-delete.json", ignore: "action DELETE is not a push"},
		{file: "ecr-push-helm-chart.json", ignore: "artifact media type application/vnd.cncf.helm.config.v1+json is not a container image"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := Parse(testenv.Event(t, tt.file))
			if tt.ignore == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if diff := cmp.Diff(tt.want, p); diff != "" {
					t.Errorf("push (-want +got):\n%s", diff)
				}
				return
			}
			ig, ok := IsIgnored(err)
			if !ok {
				t.Fatalf("Parse = %v, want ignored", err)
			}
			if !strings.Contains(ig.Reason, tt.ignore) {
				t.Errorf("reason %q, want it to contain %q", ig.Reason, tt.ignore)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	valid := string(testenv.Event(t, "ecr-push-main.json"))
	tests := []struct {
		name   string
		data   string
		errSub string
		ignore bool
	}{
		{"not json", "{", "malformed ECR event", false},
		{"array", "[]", "malformed ECR event", false},
		{"wrong source", strings.Replace(valid, `"aws.ecr"`, `"aws.ecs"`, 1), `not an ECR Image Action event: source "aws.ecs"`, false},
		{"replication", strings.Replace(valid, `"ECR Image Action"`, `"ECR Replication Action"`, 1), "not an ECR Image Action event", false},
		{"missing repository", strings.Replace(valid, `"repository-name": "web"`, `"repository-name": ""`, 1), "missing [detail.repository-name]", false},
		{"bad time", strings.Replace(valid, `"2026-11-25T10:00:00Z"`, `"yesterday"`, 1), "malformed ECR event", false},
		{"bad account", strings.Replace(valid, `"123456789012"`, `"12345"`, 1), `account "12345" is not a 12-digit id`, false},
		{"failed push", strings.Replace(valid, `"SUCCESS"`, `"FAILURE"`, 1), "push result is FAILURE", true},
		{"short digest", strings.Replace(valid, `"sha256:15794219`, `"sha256:`, 1), "is not sha256:<64 hex>", true},
		{"sha512 digest", strings.Replace(valid, `"sha256:15794219`, `"sha512:15794219`, 1), "is not sha256:<64 hex>", true},
		{"attestation tag", strings.Replace(valid, `"main-4f2a9c1"`, `"sha256-abc.att"`, 1), "signature or attestation", true},
		{"sbom tag", strings.Replace(valid, `"main-4f2a9c1"`, `"release.sbom"`, 1), "signature or attestation", true},
		{"invalid tag", strings.Replace(valid, `"main-4f2a9c1"`, `"-bad tag"`, 1), "is not a valid image tag", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if _, ok := IsIgnored(err); ok != tt.ignore {
				t.Errorf("ignored = %v, want %v (%v)", ok, tt.ignore, err)
			}
			if !strings.Contains(err.Error(), tt.errSub) {
				t.Errorf("error %q, want it to contain %q", err, tt.errSub)
			}
		})
	}
}

func TestImageRefs(t *testing.T) {
	p := Push{Account: "123456789012", Region: "cn-north-1", Repository: "team/web", Tag: "1.0.0", Digest: "sha256:" + strings.Repeat("a", 64)}
	if got, want := p.ByTag(), "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/web:1.0.0"; got != want {
		t.Errorf("ByTag = %s, want %s", got, want)
	}
	p.Region = "eu-west-1"
	if got, want := p.ByDigest(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web@sha256:"+strings.Repeat("a", 64); got != want {
		t.Errorf("ByDigest = %s, want %s", got, want)
	}
}

// FuzzParse checks that no input panics the parser and that whatever it
// accepts as a push is safe to deploy: a valid tag, a sha256 digest, no
// artifact tag.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"ecr-push-main.json", "ecr-push-signature.json", "ecr-push-by-digest.json", "ecr-delete.json", "ecr-push-helm-chart.json"} {
		f.Add(testenv.Event(f, name))
	}
	f.Add([]byte(`{"detail":null}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		if !tagRE.MatchString(p.Tag) || !digestRE.MatchString(p.Digest) || p.Repository == "" || p.EventID == "" {
			t.Fatalf("accepted an unsafe push: %+v", p)
		}
		if strings.HasSuffix(p.Tag, ".sig") && strings.HasPrefix(p.Tag, "sha256-") {
			t.Fatalf("accepted a signature tag: %+v", p)
		}
	})
}

// A multi-arch image is deployable by its manifest media type, whatever the
// artifact media type says or omits; the sample is what buildx's tag push sends.
func TestUnrunnable(t *testing.T) {
	const (
		ociIndex    = "application/vnd.oci.image.index.v1+json"
		dockerList  = "application/vnd.docker.distribution.manifest.list.v2+json"
		ociManifest = "application/vnd.oci.image.manifest.v1+json"
		dockerV2    = "application/vnd.docker.distribution.manifest.v2+json"
		ociConfig   = "application/vnd.oci.image.config.v1+json"
		helm        = "application/vnd.cncf.helm.config.v1+json"
	)
	for _, tt := range []struct {
		tag, manifest, artifact string
		reason                  string // "" = deployable
	}{
		{"v1", ociIndex, ociIndex, ""},
		{"v1", ociIndex, "", ""},
		{"v1", ociIndex, ociConfig, ""},
		{"v1", dockerList, "", ""},
		{"v1", dockerList, dockerList, ""},
		{"v1", ociManifest, ociConfig, ""},
		{"v1", dockerV2, "application/vnd.docker.container.image.v1+json", ""},
		{"v1", "", "", ""}, // events from before ECR sent media types
		{"v1", ociManifest, helm, "artifact media type " + helm + " is not a container image"},
		{"v1", ociManifest, ociIndex, "artifact media type " + ociIndex + " is not a container image"}, // an index type on a single manifest is not an index
		{"sha256-abc.sig", ociIndex, "", "is a signature or attestation artifact"},
	} {
		got := Unrunnable(tt.tag, tt.manifest, tt.artifact)
		if (tt.reason == "") != (got == "") || !strings.Contains(got, tt.reason) {
			t.Errorf("Unrunnable(%q, %q, %q) = %q, want %q", tt.tag, tt.manifest, tt.artifact, got, tt.reason)
		}
	}
	p, err := Parse(testenv.Event(t, "ecr-push-multi-arch.json"))
	if err != nil || p.Tag != "main-multiarch" {
		t.Errorf("the multi-arch push: %+v, %v; want it deployable", p, err)
	}
}
