package deploy

import (
	"fmt"
	"strings"
	"testing"
)

func TestTransientErrorBounded(t *testing.T) {
	tests := []struct {
		name      string
		retryable int
		want      []string
		wantNot   []string
	}{
		{"none", 0, nil, nil},
		{"few named", 2, []string{"2 of 1000 targets", "c/s0: throttled", "c/s1: throttled"}, []string{"more"}},
		{"many counted", 1000, []string{"1000 of 1000 targets", "c/s4: throttled", "and 995 more"}, []string{"c/s5:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := Summary{Results: make([]Result, 1000)}
			for i := range tt.retryable {
				sum.Results[i] = Result{Cluster: "c", Service: fmt.Sprintf("s%d", i), Retryable: true, Reason: "throttled" + strings.Repeat(" ", 1000)}
			}
			err := sum.TransientError("e1", "failed")
			if tt.retryable == 0 {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if len(msg) > 3000 {
				t.Errorf("error is %d bytes, want it bounded", len(msg))
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg[:min(len(msg), 300)], w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(msg, w) {
					t.Errorf("error names %q", w)
				}
			}
		})
	}
}
