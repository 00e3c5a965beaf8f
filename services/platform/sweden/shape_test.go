package sweden

import "testing"

func TestLooksLikePersonalIdentityNumber(t *testing.T) {
	for _, s := range []string{
		// Skatteverket's examples and test numbers, every way of writing them.
		"640823-3234", "6408233234", "19640823-3234", "196408233234", "1964-08-23-3234",
		"640823 3234", "121212+1212", "701063-2391", "19701063-2391",
		// Inside other text.
		"pnr 640823-3234", "ext:196408233234", "640823-3234/a", "a,640823-3234",
		// A wrong check digit is still one.
		"640823-3235", "196408233230",
		// In free text (a coach's name that must not carry one).
		"deltagare 640823-3234", "ref 196408233234 i ärendet", "samordningsnummer 701063-2391 här", "Anna 19121212-1212",
	} {
		if !LooksLikePersonalIdentityNumber(s) {
			t.Errorf("%q not recognised", s)
		}
	}
	for _, s := range []string{
		"", "participants/anna-1", "participants/p-0042", "AF-12345", "deltagare 17",
		// Not a date: month 13, day 00, day 32, day 92.
		"641323-3234", "640800-3234", "640832-3234", "640892-3234",
		// A century that personal identity numbers do not use.
		"21640823-3234",
		// Part of a longer run of digits (an account or order number).
		"12345640823323456", "0196408233234",
		// Too short or too long to be one.
		"640823-323", "64082-3234",
		// Free text with other numbers in it.
		"Anna, coach på Lernia", "ring 031-123 45 67", "tel 070-123 45 67", "org 556012-5790", "participants/p-19640823",
	} {
		if LooksLikePersonalIdentityNumber(s) {
			t.Errorf("%q recognised as a personal identity number", s)
		}
	}
}

func FuzzLooksLikePersonalIdentityNumber(f *testing.F) {
	f.Add("640823-3234")
	f.Add("participants/anna")
	f.Fuzz(func(t *testing.T, s string) {
		got := LooksLikePersonalIdentityNumber(s)
		// Whatever ParsePersonalIdentityNumber accepts, this recognises.
		if _, err := ParsePersonalIdentityNumber(s, today); err == nil && !got {
			t.Fatalf("%q parses as a personal identity number but is not recognised", s)
		}
	})
}
