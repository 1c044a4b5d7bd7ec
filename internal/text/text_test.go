package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"fits", "abc", 3, "abc"},
		{"ascii", "abcdef", 5, "ab…"},
		{"never splits a character", "aé€😀", 8, "aé…"},
		{"too small for the ellipsis", "abcdef", 2, "…"},
		{"empty", "", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Cut(tt.s, tt.n)
			if got != tt.want {
				t.Errorf("Cut(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Cut(%q, %d) = %q: not valid UTF-8", tt.s, tt.n, got)
			}
		})
	}
	long := strings.Repeat("é", 1000)
	if got := Cut(long, 301); len(got) > 301 || !strings.HasSuffix(got, Ellipsis) {
		t.Errorf("Cut of 2,000 bytes to 301: %d bytes", len(got))
	}
}
