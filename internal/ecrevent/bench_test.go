package ecrevent

import (
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func BenchmarkParse(b *testing.B) {
	data := testenv.Event(b, "ecr-push-main.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
