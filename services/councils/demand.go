package councils

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
)

// The demand signal: every notice of redundancy, furlough or lay-off the
// companies service records reaches the councils service as a
// notice.created event (notice.deleted when it is withdrawn), and is kept
// here per council as one member of a sorted set,
//
//	kn:{councils}:demand:<council>   "<YYYYMMDD>\x01<municipality>\x01<kind>\x01<affected>\x01<created µs>\x01<notice>"
//
// ordered by notice date, so the last 12 months are one range read
// whatever the council's history. Members are what a notice was when it
// was recorded (notices do not change), so notice.deleted removes exactly
// the member notice.created added. Members older than the window are kept
// (a few dozen bytes a notice) and never read.
const (
	companiesStream = "kn:{companies}:events"
	// ConsumerGroup is the group the councils service reads other
	// services' streams in.
	ConsumerGroup = "councils"

	noticeCreated = "kompetensnav.companies.v1.notice.created"
	noticeDeleted = "kompetensnav.companies.v1.notice.deleted"
)

// DemandWindow is how far back the demand signal reaches.
const DemandWindow = 12 // months

func demandKey(council string) string { return Keyspace.Key("demand", council) }

// demandGoneKey holds the members of withdrawn notices: a notice.created
// delivered after its notice.deleted (replicas of this service share the
// stream's entries, so two events may be applied out of order) finds its
// member there and adds nothing.
func demandGoneKey(council string) string { return Keyspace.Key("demand-gone", council) }

// demandMember is a notice's member of its council's demand set; ok is
// false for a notice without a council or a date (nothing to count).
func demandMember(n *companiesv1.Notice) (council, member string, ok bool) {
	council, err := parseCouncilName("", n.GetCouncil())
	d := n.GetNoticeDate()
	if err != nil || d == nil {
		return "", "", false
	}
	created := int64(0)
	if t := n.GetCreateTime(); t != nil {
		created = t.AsTime().UnixMicro()
	}
	return council, strings.Join([]string{
		fmt.Sprintf("%04d%02d%02d", d.GetYear(), d.GetMonth(), d.GetDay()),
		n.GetMunicipality(),
		strconv.Itoa(int(n.GetKind())),
		strconv.Itoa(int(n.GetAffectedEmployees())),
		strconv.FormatInt(created, 10),
		n.GetName(),
	}, "\x01"), true
}

// errWithdrawn marks a notice.created whose notice was already withdrawn.
var errWithdrawn = errors.New("notice already withdrawn")

// demandConsumer follows the companies service's notices.
func (s *Service) demandConsumer(source redis.UniversalClient) (*events.Consumer, error) {
	return events.NewConsumer(events.Config{Source: source, Stream: companiesStream, Group: ConsumerGroup, Logger: s.log},
		events.Route(map[string]events.Handler{
			noticeCreated: func(ctx context.Context, d *events.Delivery) error {
				return s.applyNotice(ctx, d, true)
			},
			noticeDeleted: func(ctx context.Context, d *events.Delivery) error {
				return s.applyNotice(ctx, d, false)
			},
		}))
}

// applyNotice adds a recorded notice to its council's demand set, or takes
// a withdrawn one out, once per event.
func (s *Service) applyNotice(ctx context.Context, d *events.Delivery, created bool) error {
	var n companiesv1.Notice
	if err := d.Decode(&n); err != nil {
		return err
	}
	council, member, ok := demandMember(&n)
	if !ok {
		s.log.WarnContext(ctx, "notice without council or date; not counted", "notice", n.GetName(), "event", d.Event.GetId())
		return nil
	}
	tx := s.st.Tx()
	events.ApplyOnce(tx, d)
	if created {
		tx.RangeEmpty(demandGoneKey(council), "["+member, "["+member, errWithdrawn)
		tx.ZAdd(demandKey(council), 0, member)
	} else {
		tx.ZRem(demandKey(council), member)
		tx.ZAdd(demandGoneKey(council), 0, member)
	}
	_, err := tx.Commit(ctx)
	if errors.Is(err, errWithdrawn) {
		return nil
	}
	return err
}

// GetDemandSignal implements councilsv1.CouncilsServiceServer: the notices
// of the council's companies dated in the last 12 months, up to today, by
// municipality and kind. One range read of the council's demand set.
func (s *Service) GetDemandSignal(ctx context.Context, req *councilsv1.GetDemandSignalRequest) (*councilsv1.DemandSignal, error) {
	id, err := parseCouncilName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, err := s.loadCouncil(ctx, id); err != nil {
		return nil, err
	}
	y, m, dd := s.now().In(s.stockholm).Date()
	today := time.Date(y, m, dd, 12, 0, 0, 0, time.UTC)
	start := today.AddDate(0, -DemandWindow, 0)
	type cell struct {
		municipality string
		kind         companiesv1.Notice_Kind
	}
	sums := map[cell]*councilsv1.DemandRow{}
	from, to := "["+start.Format("20060102"), "("+today.AddDate(0, 0, 1).Format("20060102")
	for {
		members, err := s.st.RangeLex(ctx, demandKey(id), from, to, 1000)
		if err != nil {
			return nil, err
		}
		for _, mb := range members {
			parts := strings.Split(mb, "\x01")
			if len(parts) != 6 {
				continue
			}
			kind, _ := strconv.Atoi(parts[2])
			affected, _ := strconv.ParseInt(parts[3], 10, 64)
			k := cell{parts[1], companiesv1.Notice_Kind(kind)}
			row := sums[k]
			if row == nil {
				row = &councilsv1.DemandRow{Municipality: k.municipality, Kind: k.kind}
				sums[k] = row
			}
			row.Notices++
			row.AffectedEmployees += affected
		}
		if len(members) < 1000 {
			break
		}
		from = "(" + members[len(members)-1]
	}
	out := &councilsv1.DemandSignal{Council: req.GetName(), StartDate: dateOf(start), EndDate: dateOf(today)}
	for _, r := range sums {
		out.Rows = append(out.Rows, r)
	}
	slices.SortFunc(out.Rows, func(a, b *councilsv1.DemandRow) int {
		if c := strings.Compare(a.GetMunicipality(), b.GetMunicipality()); c != 0 {
			return c
		}
		return int(a.GetKind() - b.GetKind())
	})
	return out, nil
}

func dateOf(t time.Time) *date.Date {
	return &date.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}
}
