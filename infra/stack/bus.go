package stack

import (
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// admitToBus lets exactly the registry and target accounts put events on
// the central account's default bus, one statement per account.
func admitToBus(s awscdk.Stack, tp Topology) {
	for _, account := range tp.OtherAccounts() {
		// A plain resource: the L1 construct warns on every synth of its
		// deprecated Principal property, which this does not use.
		awscdk.NewCfnResource(s, jsii.String("BusAdmits"+account), &awscdk.CfnResourceProps{
			Type: jsii.String("AWS::Events::EventBusPolicy"),
			Properties: &map[string]any{
				"EventBusName": "default",
				"StatementId":  "ecr-autodeploy-" + account,
				"Statement": map[string]any{
					"Sid":       "ecr-autodeploy-" + account,
					"Effect":    "Allow",
					"Principal": map[string]any{"AWS": "arn:aws:iam::" + account + ":root"},
					"Action":    "events:PutEvents",
					"Resource":  centralBusARN(tp.Central),
				},
			},
		})
	}
}

// accountsOf and regionsOf are the accounts and regions of places, besides
// central's, sorted.
func accountsOf(places []rules.Place, central rules.Place) []string {
	return distinct(places, func(p rules.Place) string { return p.Account }, central)
}

func regionsOf(places []rules.Place, central rules.Place) []string {
	return distinct(places, func(p rules.Place) string { return p.Region }, central)
}

func distinct(places []rules.Place, part func(rules.Place) string, central rules.Place) []string {
	var out []string
	for _, p := range places {
		if v := part(p); v != part(central) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// withOthers is own followed by others.
func withOthers(own string, others []string) []string { return append([]string{own}, others...) }
