package procurement

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"slices"
	"strings"
	"time"

	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The OCDS 1.1 export (https://standard.open-contracting.org/1.1/): an
// agreement is one contracting process whose tender is a framework
// agreement (the techniques extension) in lots (the lots extension), with
// one award per lot to its ranked suppliers; every call-off under it is a
// contracting process of its own, related to the framework's by
// relatedProcesses, whose award and contract carry the value in SEK.

// OCDSVersion is the OCDS version of the export.
const OCDSVersion = "1.1"

// OCDSPublisher names the publisher and buyer in the export.
const OCDSPublisher = "Kompetensnav"

var ocdsExtensions = []string{
	"https://raw.githubusercontent.com/open-contracting-extensions/ocds_lots_extension/master/extension.json",
	"https://raw.githubusercontent.com/open-contracting-extensions/ocds_techniques_extension/master/extension.json",
}

type ocdsPackage struct {
	URI           string        `json:"uri"`
	Version       string        `json:"version"`
	Extensions    []string      `json:"extensions"`
	PublishedDate string        `json:"publishedDate"`
	Publisher     ocdsPublisher `json:"publisher"`
	Releases      []ocdsRelease `json:"releases"`
}

type ocdsPublisher struct {
	Name string `json:"name"`
}

type ocdsRelease struct {
	OCID             string         `json:"ocid"`
	ID               string         `json:"id"`
	Date             string         `json:"date"`
	Tag              []string       `json:"tag"`
	InitiationType   string         `json:"initiationType"`
	Language         string         `json:"language"`
	Parties          []ocdsParty    `json:"parties"`
	Buyer            *ocdsOrgRef    `json:"buyer,omitempty"`
	Planning         *ocdsPlanning  `json:"planning,omitempty"`
	Tender           *ocdsTender    `json:"tender,omitempty"`
	Awards           []ocdsAward    `json:"awards,omitempty"`
	Contracts        []ocdsContract `json:"contracts,omitempty"`
	RelatedProcesses []ocdsRelated  `json:"relatedProcesses,omitempty"`
}

type ocdsOrgRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type ocdsParty struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Identifier   *ocdsIdentifier   `json:"identifier,omitempty"`
	ContactPoint *ocdsContactPoint `json:"contactPoint,omitempty"`
	Roles        []string          `json:"roles"`
}

type ocdsIdentifier struct {
	Scheme    string `json:"scheme"`
	ID        string `json:"id"`
	LegalName string `json:"legalName,omitempty"`
}

type ocdsContactPoint struct {
	Email string `json:"email,omitempty"`
}

type ocdsPlanning struct {
	Rationale string      `json:"rationale,omitempty"`
	Budget    *ocdsBudget `json:"budget,omitempty"`
}

// ocdsBudget names the funded project that pays for a call-off.
type ocdsBudget struct {
	ProjectID string `json:"projectID"`
}

type ocdsValue struct {
	Amount   json.Number `json:"amount"`
	Currency string      `json:"currency"`
}

type ocdsPeriod struct {
	StartDate string `json:"startDate,omitempty"`
	EndDate   string `json:"endDate,omitempty"`
}

type ocdsTechniques struct {
	HasFrameworkAgreement bool                   `json:"hasFrameworkAgreement"`
	FrameworkAgreement    *ocdsFrameworkTechique `json:"frameworkAgreement,omitempty"`
}

type ocdsFrameworkTechique struct {
	Method string `json:"method,omitempty"`
}

type ocdsLot struct {
	ID         string          `json:"id"`
	Title      string          `json:"title"`
	Status     string          `json:"status"`
	Techniques *ocdsTechniques `json:"techniques,omitempty"`
}

type ocdsItem struct {
	ID          string    `json:"id"`
	Description string    `json:"description"`
	Quantity    int32     `json:"quantity"`
	Unit        *ocdsUnit `json:"unit,omitempty"`
}

type ocdsUnit struct {
	Name string `json:"name"`
}

type ocdsTender struct {
	ID                       string          `json:"id"`
	Title                    string          `json:"title,omitempty"`
	Description              string          `json:"description,omitempty"`
	Status                   string          `json:"status"`
	Value                    *ocdsValue      `json:"value,omitempty"`
	ProcurementMethod        string          `json:"procurementMethod,omitempty"`
	ProcurementMethodDetails string          `json:"procurementMethodDetails,omitempty"`
	Items                    []ocdsItem      `json:"items,omitempty"`
	TenderPeriod             *ocdsPeriod     `json:"tenderPeriod,omitempty"`
	ContractPeriod           *ocdsPeriod     `json:"contractPeriod,omitempty"`
	NumberOfTenderers        *int32          `json:"numberOfTenderers,omitempty"`
	Techniques               *ocdsTechniques `json:"techniques,omitempty"`
	Lots                     []ocdsLot       `json:"lots,omitempty"`
}

type ocdsAward struct {
	ID             string       `json:"id"`
	Title          string       `json:"title,omitempty"`
	Status         string       `json:"status"`
	Date           string       `json:"date,omitempty"`
	Value          *ocdsValue   `json:"value,omitempty"`
	Suppliers      []ocdsOrgRef `json:"suppliers"`
	RelatedLots    []string     `json:"relatedLots,omitempty"`
	ContractPeriod *ocdsPeriod  `json:"contractPeriod,omitempty"`
}

type ocdsContract struct {
	ID         string      `json:"id"`
	AwardID    string      `json:"awardID"`
	Status     string      `json:"status"`
	Value      *ocdsValue  `json:"value,omitempty"`
	Period     *ocdsPeriod `json:"period,omitempty"`
	DateSigned string      `json:"dateSigned,omitempty"`
}

type ocdsRelated struct {
	ID           string   `json:"id"`
	Relationship []string `json:"relationship"`
	Title        string   `json:"title,omitempty"`
	Scheme       string   `json:"scheme"`
	Identifier   string   `json:"identifier"`
}

// ExportFrameworkAgreementOcds implements procurementv1.ProcurementServiceServer.
func (s *Service) ExportFrameworkAgreementOcds(ctx context.Context, req *procurementv1.ExportFrameworkAgreementOcdsRequest) (*httpbody.HttpBody, error) {
	a, err := s.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: req.GetName()})
	if err != nil {
		return nil, err
	}
	callOffs, err := s.callOffsUnder(ctx, a.GetName())
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range a.GetLots() {
		names = append(names, l.GetProviders()...)
	}
	for _, c := range callOffs {
		names = append(names, c.GetProvider())
	}
	slices.Sort(names)
	providers, err := s.loadProviders(ctx, slices.Compact(names))
	if err != nil {
		return nil, err
	}
	byName := map[string]*provider{}
	for _, p := range providers {
		byName[p.GetName()] = p
	}
	pkg := ocdsPackage{
		URI:           "urn:" + s.ocdsPrefix + ":" + a.GetName(),
		Version:       OCDSVersion,
		Extensions:    ocdsExtensions,
		PublishedDate: s.ocdsTime(timestamppb.New(s.now())),
		Publisher:     ocdsPublisher{Name: OCDSPublisher},
		Releases:      []ocdsRelease{s.frameworkRelease(a, byName)},
	}
	for _, c := range callOffs {
		pkg.Releases = append(pkg.Releases, s.callOffRelease(a, c, byName))
	}
	b, err := json.MarshalIndent(pkg, "", "  ")
	if err != nil {
		return nil, err
	}
	return &httpbody.HttpBody{ContentType: "application/json", Data: append(b, '\n')}, nil
}

// callOffsUnder reads every call-off of the agreement, oldest first, from
// its index set, a thousand at a time.
func (s *Service) callOffsUnder(ctx context.Context, agreement string) ([]*callOff, error) {
	key := callOffIndex.Key(Keyspace, "create_time", false, "framework_agreement", agreement)
	var out []*callOff
	after := ""
	for {
		ms, err := s.st.Range(ctx, key, after, 1000)
		if err != nil {
			return nil, err
		}
		names := make([]string, len(ms))
		for i, m := range ms {
			names[i] = listing.MemberName(m)
		}
		cs, err := s.loadCallOffs(ctx, names)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if len(ms) < 1000 {
			return out, nil
		}
		after = ms[len(ms)-1]
	}
}

func (s *Service) ocid(kind, name string) string {
	return s.ocdsPrefix + "-" + kind + "-" + name[strings.LastIndex(name, "/")+1:]
}

func (s *Service) ocdsTime(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().In(dates.Sweden).Format(time.RFC3339)
}

// ocdsDay is the start (or, with end, the last second) of a day in Sweden.
func (s *Service) ocdsDay(d *date.Date, end bool) string {
	t := time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, dates.Sweden)
	if end {
		t = t.AddDate(0, 0, 1).Add(-time.Second)
	}
	return t.Format(time.RFC3339)
}

func ocdsMoney(m *money.Money) *ocdsValue {
	if m == nil {
		return nil
	}
	o := ore(m)
	return &ocdsValue{Amount: json.Number(fmt.Sprintf("%d.%02d", o/100, o%100)), Currency: m.GetCurrencyCode()}
}

var buyer = ocdsParty{ID: "kompetensnav", Name: OCDSPublisher, Roles: []string{"buyer", "procuringEntity"}}

// party is a provider as an OCDS party: identified by its organisation
// number in the Swedish companies register (org-id.guide scheme SE-BLV).
func party(name string, p *provider, roles ...string) ocdsParty {
	if p == nil {
		return ocdsParty{ID: name, Name: name, Roles: roles}
	}
	digits := strings.ReplaceAll(p.GetOrganisationNumber(), "-", "")
	out := ocdsParty{ID: "SE-BLV-" + digits, Name: p.GetDisplayName(), Roles: roles,
		Identifier: &ocdsIdentifier{Scheme: "SE-BLV", ID: digits, LegalName: p.GetDisplayName()}}
	if p.GetContactEmail() != "" {
		out.ContactPoint = &ocdsContactPoint{Email: p.GetContactEmail()}
	}
	return out
}

func orgRef(pt ocdsParty) ocdsOrgRef { return ocdsOrgRef{ID: pt.ID, Name: pt.Name} }

var frameworkMethods = map[procurementv1.AwardMethod]string{
	rankOrder:       "withoutReopeningCompetition",
	miniCompetition: "withReopeningCompetition",
	eitherMethod:    "withAndWithoutReopeningCompetition",
}

var frameworkDetails = map[procurementv1.AwardMethod]string{
	rankOrder:       "Framework agreement (ramavtal); call-offs by rank order",
	miniCompetition: "Framework agreement (ramavtal); call-offs by mini-competition",
	eitherMethod:    "Framework agreement (ramavtal); call-offs by rank order or mini-competition",
}

func (s *Service) frameworkRelease(a *agreement, providers map[string]*provider) ocdsRelease {
	tag, tenderStatus, awardStatus := []string{"tender", "award"}, "complete", "active"
	switch a.GetState() {
	case agreementDraft:
		tag, tenderStatus, awardStatus = []string{"planning"}, "planned", "pending"
	case agreementTerminated:
		tag, awardStatus = []string{"tender", "awardUpdate"}, "cancelled"
	}
	techniques := &ocdsTechniques{HasFrameworkAgreement: true,
		FrameworkAgreement: &ocdsFrameworkTechique{Method: frameworkMethods[a.GetAwardMethod()]}}
	period := &ocdsPeriod{StartDate: s.ocdsDay(a.GetValidFrom(), false), EndDate: s.ocdsDay(a.GetValidUntil(), true)}
	r := ocdsRelease{
		OCID: s.ocid("fa", a.GetName()), ID: a.GetEtag(), Date: s.ocdsTime(a.GetUpdateTime()), Tag: tag,
		InitiationType: "tender", Language: "sv", Parties: []ocdsParty{buyer}, Buyer: &ocdsOrgRef{ID: buyer.ID, Name: buyer.Name},
		Tender: &ocdsTender{
			ID: a.GetReferenceNumber(), Title: a.GetTitle(), Description: a.GetDescription(), Status: tenderStatus,
			Value: ocdsMoney(a.GetCeilingValue()), ContractPeriod: period, Techniques: techniques,
			ProcurementMethodDetails: frameworkDetails[a.GetAwardMethod()],
		},
	}
	seen := map[string]bool{}
	for _, l := range a.GetLots() {
		r.Tender.Lots = append(r.Tender.Lots, ocdsLot{ID: l.GetId(), Title: l.GetTitle(), Status: tenderStatus, Techniques: techniques})
		if a.GetState() == agreementDraft {
			continue
		}
		award := ocdsAward{ID: l.GetId(), Title: l.GetTitle(), Status: awardStatus, Date: s.ocdsTime(a.GetActivateTime()),
			RelatedLots: []string{l.GetId()}, ContractPeriod: period}
		// Suppliers in rank order: the first is offered a call-off first.
		for _, name := range l.GetProviders() {
			pt := party(name, providers[name], "supplier", "tenderer")
			award.Suppliers = append(award.Suppliers, orgRef(pt))
			if !seen[pt.ID] {
				seen[pt.ID] = true
				r.Parties = append(r.Parties, pt)
			}
		}
		r.Awards = append(r.Awards, award)
	}
	return r
}

func (s *Service) callOffRelease(a *agreement, c *callOff, providers map[string]*provider) ocdsRelease {
	method, details := "limited", "Call-off by rank order (avrop enligt rangordning)"
	if c.GetAwardMethod() == miniCompetition {
		method, details = "selective", "Mini-competition among the lot's providers (förnyad konkurrensutsättning)"
	}
	spec := c.GetSpecification()
	r := ocdsRelease{
		OCID: s.ocid("co", c.GetName()), ID: c.GetEtag(), Date: s.ocdsTime(c.GetUpdateTime()), Tag: []string{"tender"},
		InitiationType: "tender", Language: "sv", Parties: []ocdsParty{buyer}, Buyer: &ocdsOrgRef{ID: buyer.ID, Name: buyer.Name},
		Planning: &ocdsPlanning{Rationale: "Approved competence need " + c.GetNeed()},
		Tender: &ocdsTender{
			ID: c.GetName(), Title: c.GetTitle(), Status: "active", Value: ocdsMoney(c.GetValue()),
			ProcurementMethod: method, ProcurementMethodDetails: details,
			Items: []ocdsItem{{ID: "1", Description: fmt.Sprintf("%d days of training: %s; in municipality %s, starting by %s",
				spec.GetDays(), c.GetTitle(), spec.GetMunicipality(), dates.String(spec.GetLatestStart())),
				Quantity: spec.GetParticipants(), Unit: &ocdsUnit{Name: "participant"}}},
		},
		RelatedProcesses: []ocdsRelated{{ID: "1", Relationship: []string{"framework"}, Title: a.GetTitle(),
			Scheme: "ocid", Identifier: s.ocid("fa", a.GetName())}},
	}
	if c.GetProject() != "" {
		r.Planning.Budget = &ocdsBudget{ProjectID: c.GetProject()}
	}
	if c.GetAwardMethod() == miniCompetition {
		r.Tender.TenderPeriod = &ocdsPeriod{EndDate: s.ocdsTime(c.GetBidDeadline())}
		n := c.GetBidCount()
		r.Tender.NumberOfTenderers = &n
	}
	switch c.GetState() {
	case awarded:
		r.Tag, r.Tender.Status = []string{"award", "contract"}, "complete"
		pt := party(c.GetProvider(), providers[c.GetProvider()], "supplier")
		r.Parties = append(r.Parties, pt)
		r.Awards = []ocdsAward{{ID: "1", Status: "active", Date: s.ocdsTime(c.GetAwardTime()), Value: ocdsMoney(c.GetAwardValue()),
			Suppliers: []ocdsOrgRef{orgRef(pt)}}}
		r.Contracts = []ocdsContract{{ID: "1", AwardID: "1", Status: "active", Value: ocdsMoney(c.GetAwardValue()),
			DateSigned: s.ocdsTime(c.GetAwardTime())}}
	case noProvider:
		r.Tag, r.Tender.Status = []string{"tenderUpdate"}, "unsuccessful"
	case cancelled:
		r.Tag, r.Tender.Status = []string{"tenderCancellation"}, "cancelled"
	}
	return r
}
