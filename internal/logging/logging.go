// Package logging builds the JSON slog logger both functions write to
// CloudWatch: one object per line, with the Lambda request id when there is one.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// New returns a JSON logger writing to w at level.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(requestIDHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// LevelFromEnv reads LOG_LEVEL, else Lambda's AWS_LAMBDA_LOG_LEVEL (set when
// the function's log format is JSON), else INFO. Lambda's TRACE and FATAL
// map to slog's nearest levels.
func LevelFromEnv(getenv func(string) string) slog.Level {
	v := getenv("LOG_LEVEL")
	if v == "" {
		v = getenv("AWS_LAMBDA_LOG_LEVEL")
	}
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "TRACE", "DEBUG":
		return slog.LevelDebug
	case "WARN", "WARNING":
		return slog.LevelWarn
	case "ERROR", "FATAL":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// requestIDHandler adds request_id from the Lambda context to every record
// logged with a context, so each line can be tied to its invocation.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String("request_id", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
