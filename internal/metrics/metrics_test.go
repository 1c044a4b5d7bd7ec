package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEmitIsEMF(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	at := time.UnixMilli(1764064800123)
	Emit(context.Background(), log, at, map[string]string{"service": "staging/web", "rule": "r", "outcome": "deployed"},
		[][]string{{"outcome"}, {"rule"}},
		Metric{"Deploys", "Count", 1}, Metric{"DeployDuration", "Milliseconds", 42})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Timestamp": 1764064800123.0,
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  "Autodeploy",
			"Dimensions": []any{[]any{"outcome", "rule", "service"}, []any{"outcome"}, []any{"rule"}},
			"Metrics":    []any{map[string]any{"Name": "Deploys", "Unit": "Count"}, map[string]any{"Name": "DeployDuration", "Unit": "Milliseconds"}},
		}},
	}
	if diff := cmp.Diff(want, got["_aws"]); diff != "" {
		t.Errorf("_aws (-want +got):\n%s", diff)
	}
	for k, v := range map[string]any{"Deploys": 1.0, "DeployDuration": 42.0, "rule": "r", "service": "staging/web", "outcome": "deployed"} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// A logger set to WARN (LOG_LEVEL=warn) still writes the metrics: the level
// quiets the log, not the dashboard.
func TestEmitIgnoresTheLogLevel(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	Emit(context.Background(), log, time.Now(), map[string]string{"rule": "r"}, nil, Metric{Drift, "Count", 2})
	if !strings.Contains(buf.String(), `"Drift":2`) {
		t.Errorf("no metrics line at WARN: %q", buf.String())
	}
}
