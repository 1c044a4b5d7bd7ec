package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// ECR is what a sweep asks the registry.
type ECR interface {
	DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, optFns ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
}

// pageSize is DescribeImages' largest page: a repository of up to 1000
// tagged images costs one call.
const pageSize = 1000

// listImages returns the repository's runnable tagged images, one per tag:
// signatures, attestations and non-image artifacts are left out as a push
// event of them would be.
func listImages(ctx context.Context, client ECR, repository string) ([]rules.Image, error) {
	var out []rules.Image
	in := &ecr.DescribeImagesInput{RepositoryName: aws.String(repository), MaxResults: aws.Int32(pageSize),
		Filter: &ecrtypes.DescribeImagesFilter{TagStatus: ecrtypes.TagStatusTagged}}
	p := ecr.NewDescribeImagesPaginator(client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe images of %s: %w", repository, err)
		}
		for _, d := range page.ImageDetails {
			for _, tag := range d.ImageTags {
				if ecrevent.Unrunnable(tag, aws.ToString(d.ImageManifestMediaType), aws.ToString(d.ArtifactMediaType)) != "" {
					continue
				}
				out = append(out, rules.Image{Tag: tag, Digest: aws.ToString(d.ImageDigest), PushedAt: aws.ToTime(d.ImagePushedAt)})
			}
		}
	}
	return out, nil
}

// repositoryMissing reports ECR's answer for a repository that does not exist.
func repositoryMissing(err error) bool {
	var nf *ecrtypes.RepositoryNotFoundException
	return errors.As(err, &nf)
}
