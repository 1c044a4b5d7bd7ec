// Package text shortens what people read: a reason in a notice, a log
// line's error, an item's attribute bounded for DynamoDB's 400 KB.
package text

import "unicode/utf8"

// Ellipsis ends a cut text, so a reader knows it was cut.
const Ellipsis = "…"

// Cut shortens s to at most n bytes, ellipsis included, on a character
// boundary. An n too small for the ellipsis cuts to the ellipsis alone.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	end := max(n-len(Ellipsis), 0)
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + Ellipsis
}
