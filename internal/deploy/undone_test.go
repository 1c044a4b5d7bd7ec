package deploy

import (
	"context"
	"fmt"
	"testing"
)

// A deploy that takes over the lease of a holder of this very event and
// rule — an earlier try that died holding it — looks for its own deploy
// undone since, although the item is a first receive (a redrive, a
// duplicate queued item, Lambda's retry of an in-process deploy): the SQS
// receive count cannot tell. Any other holder, or a free lock, costs
// nothing. ECS and the locks are the package's fakes.
func TestTakenOverLeaseOfThisEventChecksForAnUndoneDeploy(t *testing.T) {
	event := func() string { return fmt.Sprintf("evt-web-v1.0.0-%d", t0.Unix()) }
	// The check describes the revisions after the running one, which a
	// deploy alone does not (extra: describes beyond a free lock's).
	describes := map[string]int{}
	for _, tt := range []struct {
		name   string
		holder string
		checks bool
	}{
		{"free lock", "", false},
		{"another event's dead holder", "evt-other/web-prod", false},
		{"this event's dead holder", event() + "/web-prod", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.services.deadHolder = tt.holder
			sum, err := f.d.Handle(context.Background(), pushEvent(t, "web", "v1.0.0", t0))
			if err != nil || len(sum.Results) != 1 || sum.Results[0].Outcome != Deployed {
				t.Fatalf("%+v, %v", sum.Results, err)
			}
			describes[tt.name] = f.ecs.calls["DescribeTaskDefinition"]
			if extra := describes[tt.name] - describes["free lock"]; (extra > 0) != tt.checks {
				t.Errorf("%d describes beyond a free lock's; want the undone check %v", extra, tt.checks)
			}
		})
	}
}
