package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// One push to twenty services against an ECS that throttles registrations
// as the real one does (a burst, then a steady rate; here scaled down to a
// burst of 2 and 4/s so the test stays short): the SDK's adaptive retry
// waits its turn and every target deploys, none fails. Against
// testenv.FakeAWS, since moto does not throttle; the bootstrap runs under
// aws-lambda-rie with its real SDK retryer.
func TestThrottledRegistrationsAllDeploy(t *testing.T) {
	m := testenv.StartMoto(t) // only for the environment; every call goes to the fake
	fake := testenv.StartFakeAWS(t)
	fake.RegisterRate(2, 4)
	var targets []string
	for i := range 20 {
		targets = append(targets, fmt.Sprintf("{cluster: c, service: s%02d, containers: [app]}", i))
	}
	rulesFile := filepath.Join(t.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(rulesFile, []byte("version: 1\nrules:\n  - {name: fleet, repository: fleet, tags: [\"*\"], targets: ["+
		strings.Join(targets, ", ")+"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rie := testenv.StartFunction(t, "deployer", rulesFile, append(m.Env(), "AWS_ENDPOINT_URL="+fake.URL, "AUTODEPLOY_TABLE=t", "AUTODEPLOY_ACCOUNT="+testenv.Account))
	event := `{"version":"0","id":"throttle-1","detail-type":"ECR Image Action","source":"aws.ecr","account":"` + testenv.Account +
		`","time":"2026-11-26T10:00:00Z","region":"` + testenv.Region + `","resources":[],"detail":{"result":"SUCCESS",` +
		`"repository-name":"fleet","image-digest":"sha256:` + strings.Repeat("ab", 32) + `","action-type":"PUSH","image-tag":"v2"}}`
	body, err := rie.Invoke(context.Background(), []byte(event))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(body), `"outcome":"deployed"`); got != 20 {
		t.Fatalf("%d of 20 targets deployed: %s", got, body)
	}
	if fake.Throttled() == 0 {
		t.Error("no registration was throttled: the test did not exercise throttling")
	}
	for i := range 20 {
		if got := fake.Running("c", fmt.Sprintf("s%02d", i)); !strings.HasSuffix(got, ":2") {
			t.Errorf("s%02d runs %s, want revision 2", i, got)
		}
	}
	t.Logf("%d registrations throttled and retried", fake.Throttled())
}
