package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// pagedECR serves a listing in pages, as ECR does past 1000 images (moto
// would need a thousand pushes to show it).
type pagedECR struct {
	pages [][]ecrtypes.ImageDetail
	asked []*ecr.DescribeImagesInput
}

func (p *pagedECR) DescribeImages(_ context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	p.asked = append(p.asked, in)
	i := 0
	if in.NextToken != nil {
		i = int(aws.ToString(in.NextToken)[0] - '0')
	}
	out := &ecr.DescribeImagesOutput{ImageDetails: p.pages[i]}
	if i+1 < len(p.pages) {
		out.NextToken = aws.String(string(rune('0' + i + 1)))
	}
	return out, nil
}

// The sweep lists every page, tagged images only, and drops what a push
// event would drop: signatures, non-image artifacts; a multi-arch index is
// kept whatever its artifact type says.
func TestListImages(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	detail := func(digest, manifest, artifact string, tags ...string) ecrtypes.ImageDetail {
		d := ecrtypes.ImageDetail{ImageDigest: aws.String(digest), ImageTags: tags, ImagePushedAt: aws.Time(at),
			ImageManifestMediaType: aws.String(manifest)}
		if artifact != "" {
			d.ArtifactMediaType = aws.String(artifact)
		}
		return d
	}
	const (
		index    = "application/vnd.oci.image.index.v1+json"
		manifest = "application/vnd.oci.image.manifest.v1+json"
		config   = "application/vnd.oci.image.config.v1+json"
	)
	fake := &pagedECR{pages: [][]ecrtypes.ImageDetail{
		{detail("sha256:a", manifest, config, "v1", "latest"), detail("sha256:sig", manifest, "application/vnd.dev.cosign.artifact.sig.v1+json", "sha256-a.sig")},
		{detail("sha256:multi", index, index, "v2"), detail("sha256:chart", manifest, "application/vnd.cncf.helm.config.v1+json", "chart-1")},
	}}
	got, err := listImages(context.Background(), fake, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := []rules.Image{{Tag: "v1", Digest: "sha256:a", PushedAt: at}, {Tag: "latest", Digest: "sha256:a", PushedAt: at},
		{Tag: "v2", Digest: "sha256:multi", PushedAt: at}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if len(fake.asked) != 2 || aws.ToInt32(fake.asked[0].MaxResults) != 1000 || fake.asked[0].Filter.TagStatus != ecrtypes.TagStatusTagged {
		t.Errorf("asked %d pages: %+v", len(fake.asked), fake.asked[0])
	}
}
