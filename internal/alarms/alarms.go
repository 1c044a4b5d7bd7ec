// Package alarms reads CloudWatch alarms' state for the gates' bakes
// (gate.AlarmReader). Only the watcher links it, and with it the
// CloudWatch client.
package alarms

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
)

// CloudWatch is the one call a bake's end makes.
type CloudWatch interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

// NewClient is a CloudWatch client in CloudWatch's query protocol: the
// service takes it as it takes the SDK's default (CBOR), and moto — the
// tests' and the demo's CloudWatch — speaks only the query protocol.
func NewClient(cfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
	})
}

// Reader reads alarms' states through one client (a region, a role).
type Reader struct{ CloudWatch CloudWatch }

// maxNames is how many alarm names one DescribeAlarms takes.
const maxNames = 100

// AlarmStates reads the named alarms, metric and composite; one CloudWatch
// does not answer for does not exist.
func (r Reader) AlarmStates(ctx context.Context, names []string) ([]gate.AlarmState, error) {
	var out []gate.AlarmState
	for start := 0; start < len(names); start += maxNames {
		in := &cloudwatch.DescribeAlarmsInput{
			AlarmNames: names[start:min(start+maxNames, len(names))],
			AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm},
		}
		pages := cloudwatch.NewDescribeAlarmsPaginator(r.CloudWatch, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describe alarms %v: %w", in.AlarmNames, err)
			}
			for _, m := range page.MetricAlarms {
				out = append(out, gate.AlarmState{Name: aws.ToString(m.AlarmName), InAlarm: m.StateValue == cwtypes.StateValueAlarm, Since: aws.ToTime(m.StateUpdatedTimestamp)})
			}
			for _, c := range page.CompositeAlarms {
				out = append(out, gate.AlarmState{Name: aws.ToString(c.AlarmName), InAlarm: c.StateValue == cwtypes.StateValueAlarm, Since: aws.ToTime(c.StateUpdatedTimestamp)})
			}
		}
	}
	return out, nil
}
