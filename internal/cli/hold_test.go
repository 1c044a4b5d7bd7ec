package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// TestHoldRefusesWhatWouldMislead: against moto, a hold or resume of a
// service that is not there is an error; a second hold does not replace the
// first without --force (the same hold again is done already); every hold
// and resume is a row of `autodeploy history`, once even when an answer
// was lost.
func TestHoldRefusesWhatWouldMislead(t *testing.T) {
	t.Parallel()
	s := setup(t)
	if _, err := s.ecs.DeleteService(context.Background(), &ecs.DeleteServiceInput{Cluster: aws.String("staging"), Service: aws.String("web"), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"hold, no such service", []string{"hold", "--cluster", "prod", "--service", "does-not-exist", "--reason", "x"}, "not held: service does-not-exist not found in cluster prod in account " + testenv.Account},
		{"hold, no such cluster", []string{"hold", "--cluster", "nope", "--service", "web", "--reason", "x"}, "not held: cluster nope not found"},
		{"hold, a deleted service", []string{"hold", "--cluster", "staging", "--service", "web", "--reason", "x"}, "not held: service"},
		{"resume, no such service", []string{"resume", "--cluster", "prod", "--service", "does-not-exist"}, "not resumed: service does-not-exist not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := cli(t, s.moto, s.table, tc.args...); r.code != 1 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("%v = %+v, want an error with %q", tc.args, r, tc.want)
			}
		})
	}
	if r := cli(t, s.moto, s.table, "history", "--cluster", "prod", "--service", "does-not-exist"); !strings.Contains(r.stdout, "no deploys or holds recorded") {
		t.Errorf("the refused hold left a trace: %+v", r)
	}

	// Through a proxy that loses the answer to the hold's write once.
	proxy := testenv.StartProxy(t, s.moto.Endpoint)
	proxy.Lose("TransactWriteItems", 1)
	hold := func(args ...string) run {
		return cliWith(t, proxy.Config(s.moto.AWSConfig()), s.table, append([]string{"hold", "--cluster", "prod", "--service", "web"}, args...)...)
	}
	if r := hold("--reason", "incident 4711", "--by", "alice"); r.code != 0 || !strings.Contains(r.stdout, "prod/web held by alice since ") || proxy.Lost("TransactWriteItems") != 1 {
		t.Fatalf("hold whose answer was lost: %+v", r)
	}
	// The same hold again (the operator did not see the first answer): done.
	if r := hold("--reason", "incident 4711", "--by", "alice"); r.code != 0 || !strings.Contains(r.stdout, "prod/web already held by alice since ") {
		t.Errorf("the same hold again: %+v", r)
	}
	r := hold("--reason", "load test", "--by", "bob")
	if r.code != 1 || !strings.Contains(r.stderr, "prod/web is already held by alice since ") || !strings.Contains(r.stderr, ": incident 4711") ||
		!strings.Contains(r.stderr, `autodeploy hold --cluster prod --service web --reason "load test" --force`) {
		t.Errorf("a second hold: %+v", r)
	}
	r = hold("--reason", "load test", "--by", "bob", "--force")
	if r.code != 0 || !strings.Contains(r.stdout, "prod/web held by bob since ") || !strings.Contains(r.stdout, "it replaces: held by alice since ") {
		t.Errorf("hold --force: %+v", r)
	}
	resume := func() run { return cli(t, s.moto, s.table, "resume", "--cluster", "prod", "--service", "web") }
	if r := resume(); r.code != 0 || !strings.Contains(r.stdout, "prod/web resumed (it was held by bob since ") {
		t.Errorf("resume: %+v", r)
	}
	if r := resume(); r.code != 0 || !strings.Contains(r.stdout, "prod/web was not held") {
		t.Errorf("resume twice: %+v", r)
	}

	r = cli(t, s.moto, s.table, "history", "--cluster", "prod", "--service", "web")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		f := strings.Fields(l)
		got = append(got, strings.Join(f[1:], " "))
	}
	want := []string{"resume - resumed - - by user/moto, lifting held by bob since ",
		"hold - held - - by bob: load test (--force, replacing held by alice since ",
		"hold - held - - by alice: incident 4711"}
	if len(got) != len(want) {
		t.Fatalf("history, newest first:\n%s", r.stdout)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("history row %d = %q, want it to begin %q", i+1, got[i], want[i])
		}
	}
}
