package skills

import (
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// foldDiacritics decomposes letters and drops the combining marks: "Ö" →
// "O", "é" → "e", "å" → "a". A chain keeps state, so each use has its own.
func foldDiacritics() transform.Transformer {
	return transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}

// letters NFD does not decompose, spelt as Swedish readers would type them
// on a keyboard without them.
var unfoldable = strings.NewReplacer("ø", "o", "Ø", "o", "æ", "ae", "Æ", "ae", "ß", "ss",
	"đ", "d", "Đ", "d", "ł", "l", "Ł", "l", "œ", "oe", "Œ", "oe", "þ", "th", "Þ", "th")

// normalise is the form labels are indexed and queries searched in: lower
// case, without diacritics, every run of characters that are neither
// letters nor digits one space, trimmed. "MIG/MAG-svetsning" is
// "mig mag svetsning", "Säkerhet" "sakerhet".
func normalise(s string) string {
	folded, _, err := transform.String(foldDiacritics(), unfoldable.Replace(s))
	if err != nil {
		folded = s
	}
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(folded) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
			continue
		}
		space = true
	}
	return b.String()
}

// words are the words of normalised text.
func words(normalised string) []string { return strings.Fields(normalised) }
