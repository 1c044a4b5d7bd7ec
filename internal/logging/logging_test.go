package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

func TestRequestIDAndJSON(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo).With("component", "test")
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	log.InfoContext(ctx, "deploy", "outcome", "deployed")
	log.DebugContext(ctx, "hidden")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	for k, want := range map[string]any{"msg": "deploy", "level": "INFO", "request_id": "req-1", "outcome": "deployed", "component": "test"} {
		if line[k] != want {
			t.Errorf("%s = %v, want %v", k, line[k], want)
		}
	}
	if _, ok := line["time"]; !ok {
		t.Error("no time field")
	}
}

func TestLevelFromEnv(t *testing.T) {
	tests := []struct {
		logLevel, lambdaLevel string
		want                  slog.Level
	}{
		{"", "", slog.LevelInfo},
		{"debug", "", slog.LevelDebug},
		{"", "TRACE", slog.LevelDebug},
		{"", "FATAL", slog.LevelError},
		{"warn", "DEBUG", slog.LevelWarn},
		{"nonsense", "", slog.LevelInfo},
	}
	for _, tt := range tests {
		env := map[string]string{"LOG_LEVEL": tt.logLevel, "AWS_LAMBDA_LOG_LEVEL": tt.lambdaLevel}
		if got := LevelFromEnv(func(k string) string { return env[k] }); got != tt.want {
			t.Errorf("LevelFromEnv(%q, %q) = %v, want %v", tt.logLevel, tt.lambdaLevel, got, tt.want)
		}
	}
}
