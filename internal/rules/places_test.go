package rules

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTargetPlaces(t *testing.T) {
	central := Place{Account: "111111111111", Region: "eu-west-1"}
	cfg, err := Parse("f.yaml", []byte(`version: 1
rules:
  - name: a
    repository: web
    tags: [x]
    targets:
      - {cluster: c, service: s1, account: "333333333333", region: us-east-1}
      - {cluster: c, service: s2}
      - {cluster: c, service: s3, region: eu-west-1}
      - {cluster: c, service: s4, region: ap-southeast-2}
  - name: b
    repository: web
    tags: [y]
    targets:
      - {cluster: c, service: s5, account: "222222222222"}
      - {cluster: c, service: s6, account: "333333333333", region: us-east-1}
      - {cluster: c, service: 'arn:aws:ecs:ap-southeast-2:111111111111:service/c/s7'}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		central Place
		want    []Place
	}{
		{"others, once each, sorted; central left out however written", central, []Place{
			{"111111111111", "ap-southeast-2"}, {"222222222222", "eu-west-1"}, {"333333333333", "us-east-1"}}},
		{"an unknown central keeps the fields as written", Place{}, []Place{
			{"", "ap-southeast-2"}, {"", "eu-west-1"}, {"111111111111", "ap-southeast-2"}, {"222222222222", ""}, {"333333333333", "us-east-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, cfg.TargetPlaces(tt.central)); diff != "" {
				t.Errorf("TargetPlaces (-want +got):\n%s", diff)
			}
		})
	}
}
