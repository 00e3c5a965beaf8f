package store_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

// createCouncil is the typical write: the resource, its index entry and its
// event, in one Commit.
func createCouncil(b *testing.B, s *store.Store, n int64, c *councilsv1.SectorCouncil) {
	name := "councils/c" + strconv.FormatInt(n, 10)
	c.Name = name
	tx := s.Tx()
	if err := tx.Put(ks.Key("council", name), c); err != nil {
		b.Fatal(err)
	}
	tx.ZAdd(ks.Key("index"), float64(n), name)
	tx.Emit("council.created", name, c)
	if _, err := tx.Commit(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func newCouncil() *councilsv1.SectorCouncil {
	return &councilsv1.SectorCouncil{
		DisplayName:    "Fordonsindustrin",
		Municipalities: []string{"1480", "1384", "1401", "1402"},
	}
}

func BenchmarkCommit(b *testing.B) {
	s := newStore(testkit.Redis(b))
	c := newCouncil()
	var n int64
	b.ReportAllocs()
	for b.Loop() {
		n++
		createCouncil(b, s, n, c)
	}
}

func BenchmarkCommitParallel(b *testing.B) {
	s := newStore(testkit.Redis(b))
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := newCouncil() // Put sets its etag: one message per goroutine
		for pb.Next() {
			createCouncil(b, s, n.Add(1), c)
		}
	})
}
