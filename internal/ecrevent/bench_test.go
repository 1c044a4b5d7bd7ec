package ecrevent

import "testing"

func BenchmarkParse(b *testing.B) {
	data := readEvent(b, "ecr-push-main.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
