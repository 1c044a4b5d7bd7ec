package alarms

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// On moto (through the query protocol NewClient speaks): the named alarms'
// states, ALARM or not, past one DescribeAlarms' 100 names; a name no
// alarm has is not answered for.
func TestAlarmStatesOnMoto(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	client := NewClient(m.AWSConfig())
	var names []string
	for i := range 103 {
		name := fmt.Sprintf("web-%03d", i)
		names = append(names, name)
		if _, err := client.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(name), Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_Target_5XX_Count"),
			Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(10),
			ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"web-001", "web-102"} {
		if _, err := client.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(name), StateValue: cwtypes.StateValueAlarm,
			StateReason: aws.String("test")}); err != nil {
			t.Fatal(err)
		}
	}
	states, err := Reader{CloudWatch: client}.AlarmStates(ctx, append(names, "web-missing"))
	if err != nil {
		t.Fatal(err)
	}
	var got, firing []string
	for _, s := range states {
		got = append(got, s.Name)
		if s.InAlarm {
			firing = append(firing, s.Name)
			if s.Since.IsZero() {
				t.Errorf("%s in ALARM with no time", s.Name)
			}
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("alarms answered (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web-001", "web-102"}, firing); diff != "" {
		t.Errorf("in ALARM (-want +got):\n%s", diff)
	}
	var _ gate.AlarmReader = Reader{}
}
