package sweden

import "testing"

func TestMunicipalities(t *testing.T) {
	if n := len(Municipalities); n != 290 {
		t.Fatalf("Sweden has 290 municipalities, table has %d", n)
	}
	for _, c := range GoteborgsRegionen {
		if !IsMunicipality(c) {
			t.Errorf("GR member %s is not in the table", c)
		}
	}
	if Municipalities["1480"] != "Göteborg" || Municipalities["1384"] != "Kungsbacka" {
		t.Errorf("wrong names for 1480/1384")
	}
	for _, bad := range []string{"0000", "1400", "9999", "148", ""} {
		if IsMunicipality(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
