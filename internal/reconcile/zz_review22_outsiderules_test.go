package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// TestZZReview22ServiceOutsideTheRules: prod/web-batch runs web:5 but no
// rule names it (a second service IaC made on the same family, or a
// service whose rule was removed from the file); clean-up of web for
// prod/web deregisters web:5, its running revision — and with delete: true
// deletes it, after which ECS refuses any UpdateService of web-batch that
// keeps web:5 (e.g. a desired-count change made through a new deployment,
// or its circuit breaker rolling back to it).
func TestZZReview22ServiceOutsideTheRules(t *testing.T) {
	f := &rollbackECS{running: "web:12"}
	for i := 1; i <= 12; i++ {
		f.active = append(f.active, fmt.Sprintf("web:%d", i))
	}
	r := &CleanupRunner{ECS: func(string, string) CleanupECS { return f }, History: rollbackHistory{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cmd := work.Cleanup{Account: "111111111111", Region: "eu-west-1", Family: "web", Keep: 3,
		Services: []work.CleanupService{{Cluster: "prod", Service: "web"}}, Rules: []string{"web"}, Origin: "zz"}
	if _, err := r.Run(context.Background(), cmd, cleanup.NewBudget(100)); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(f.deregistered, "web:5") {
		t.Errorf("deregistered web:5, which prod/web-batch (a service of the same cluster and family that no rule names) runs; deregistered %v", f.deregistered)
	}
}
