package work

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRecheckRoundTrip(t *testing.T) {
	body, err := EncodeCommand(Recheck{DeploymentID: "ecs-svc/123"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"kind":"recheck","v":1,"deployment_id":"ecs-svc/123"}`; string(body) != want {
		t.Errorf("encoded %s, want %s", body, want)
	}
	if !IsCommand(body) {
		t.Error("a recheck is not recognised as a command")
	}
	got, err := DecodeRecheck(body)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Recheck{DeploymentID: "ecs-svc/123"}, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

func TestDecodeRecheckRefuses(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"not json", `{`},
		{"another kind", `{"kind":"sweep","v":1,"id":"x","origin":"y"}`},
		{"newer version", `{"kind":"recheck","v":2,"deployment_id":"ecs-svc/1"}`},
		{"no deployment", `{"kind":"recheck","v":1}`},
		{"wrong type", `{"kind":"recheck","v":1,"deployment_id":7}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRecheck([]byte(tt.body))
			var perm *Error
			if !errors.As(err, &perm) {
				t.Errorf("DecodeRecheck(%s) = %v, want a permanent *Error", tt.body, err)
			}
		})
	}
}
