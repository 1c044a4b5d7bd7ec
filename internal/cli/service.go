package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// describeService returns the service the flags name, or an error in the
// operator's words when it is missing or no longer active: a hold, resume
// or rollback of a mistyped name must not "succeed".
func describeService(ctx context.Context, client serviceDescriber, sf serviceFlags, region string) (*types.Service, error) {
	where := fmt.Sprintf("in account %s, region %s", *sf.account, region)
	out, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: sf.cluster, Services: []string{*sf.service}})
	var noCluster *types.ClusterNotFoundException
	switch {
	case errors.As(err, &noCluster):
		return nil, fmt.Errorf("cluster %s not found %s: check --cluster (and --account, --region)", *sf.cluster, where)
	case err != nil:
		return nil, fmt.Errorf("describe service %s/%s: %w", *sf.cluster, *sf.service, err)
	case len(out.Services) == 0:
		return nil, fmt.Errorf("service %s not found in cluster %s %s: check --service (and --account, --region)", *sf.service, *sf.cluster, where)
	}
	svc := &out.Services[0]
	if s := aws.ToString(svc.Status); s != "ACTIVE" {
		return nil, fmt.Errorf("service %s/%s is %s (deleted or being deleted) %s: nothing deploys it", *sf.cluster, *sf.service, s, where)
	}
	return svc, nil
}
