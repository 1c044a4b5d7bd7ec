package work

import (
	"errors"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

func cleanupCommand() Cleanup {
	return Cleanup{Account: "111111111111", Region: "eu-west-1", Role: "arn:aws:iam::111111111111:role/autodeploy-target",
		Family: "web", Keep: 3, Delete: true,
		Services: []CleanupService{{Cluster: "staging", Service: "web", Published: []string{"/ecr-autodeploy/staging/web/app"}}, {Cluster: "prod", Service: "web"}},
		Rules:    []string{"web-staging"}, Origin: "sweep reconcile-1"}
}

// A cleanup goes through its envelope and comes back as sent; DecodeCommand
// knows the kind.
func TestCleanupRoundTrip(t *testing.T) {
	body, err := EncodeCommand(cleanupCommand())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"cleanup","v":1,"account":"111111111111","region":"eu-west-1","role":"arn:aws:iam::111111111111:role/autodeploy-target",` +
		`"family":"web","keep":3,"delete":true,"services":[{"cluster":"staging","service":"web","published":["/ecr-autodeploy/staging/web/app"]},` +
		`{"cluster":"prod","service":"web"}],"rules":["web-staging"],"origin":"sweep reconcile-1"}`
	if diff := gocmp.Diff(want, string(body)); diff != "" {
		t.Errorf("encoded (-want +got):\n%s", diff)
	}
	got, err := DecodeCommand(body)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(Command(cleanupCommand()), got); diff != "" {
		t.Errorf("round trip (-sent +read):\n%s", diff)
	}
}

// An incomplete cleanup, or one of another version, is a permanent *Error.
func TestCleanupRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Cleanup)
		body string
	}{
		{name: "no family", edit: func(c *Cleanup) { c.Family = "" }},
		{name: "no services", edit: func(c *Cleanup) { c.Services = nil }},
		{name: "no rules", edit: func(c *Cleanup) { c.Rules = nil }},
		{name: "keep below two", edit: func(c *Cleanup) { c.Keep = 1 }},
		{name: "service without cluster", edit: func(c *Cleanup) { c.Services[1].Cluster = "" }},
		{name: "unknown version", body: `{"kind":"cleanup","v":2,"account":"1","region":"r","family":"web","keep":3,"services":[{"cluster":"c","service":"s"}],"rules":["r"],"origin":"o"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			if tc.edit != nil {
				c := cleanupCommand()
				tc.edit(&c)
				var err error
				if body, err = EncodeCommand(c); err != nil {
					t.Fatal(err)
				}
			}
			_, err := DecodeCommand(body)
			var werr *Error
			if !errors.As(err, &werr) {
				t.Fatalf("DecodeCommand = %v, want a *work.Error", err)
			}
		})
	}
}
