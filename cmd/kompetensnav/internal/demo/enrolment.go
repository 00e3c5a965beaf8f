package demo

import (
	"context"
	"fmt"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/genproto/googleapis/type/timeofday"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// goteborgsregionen is the region of both demo projects.
var goteborgsregionen = []string{"1401", "1402", "1407", "1415", "1419", "1440", "1441", "1462", "1480", "1481", "1482", "1489", "1384"}

var everyTargetGroup = []commonv1.TargetGroup{
	commonv1.TargetGroup_TARGET_GROUP_EMPLOYED_AT_RISK, commonv1.TargetGroup_TARGET_GROUP_NOTIFIED,
	commonv1.TargetGroup_TARGET_GROUP_FURLOUGHED, commonv1.TargetGroup_TARGET_GROUP_LAID_OFF,
	commonv1.TargetGroup_TARGET_GROUP_JOB_SEEKER,
}

// Projects are the demo's funded projects: GR kompetensomställning
// (2020/00312) with its real budget and target but its 29 months moved so
// that they include today, and one with VästKraft's targets running this
// year and next.
func Projects(today time.Time) map[string]*enrolmentv1.Project {
	y := today.Year()
	if today.Month() < time.August {
		y--
	}
	return map[string]*enrolmentv1.Project{
		"esf-2020-00312": {
			ReferenceNumber: "2020/00312", DisplayName: "GR kompetensomställning", Funder: "Europeiska socialfonden",
			StartDate: &date.Date{Year: int32(y), Month: 8, Day: 1}, EndDate: &date.Date{Year: int32(y + 2), Month: 12, Day: 31},
			Budget: &money.Money{CurrencyCode: "SEK", Units: 29_177_901}, Region: goteborgsregionen,
			EligibleTargetGroups: everyTargetGroup,
			Targets:              &enrolmentv1.Targets{Participants: 1750},
		},
		"vastkraft": {
			ReferenceNumber: "KN-VK-" + fmt.Sprint(today.Year()), DisplayName: "VästKraft – kompetensutveckling för omställning",
			Funder:    "Europeiska socialfonden",
			StartDate: &date.Date{Year: int32(today.Year()), Month: 1, Day: 1}, EndDate: &date.Date{Year: int32(today.Year() + 1), Month: 12, Day: 31},
			Budget: &money.Money{CurrencyCode: "SEK", Units: 40_000_000}, Region: goteborgsregionen,
			EligibleTargetGroups: everyTargetGroup,
			Targets:              &enrolmentv1.Targets{Participants: 3500, Women: 1000, Employed: 2500, JobSeekers: 1000},
		},
	}
}

// Synthetic names: obviously made up, never a real person's.
var (
	givenNames  = []string{"Alva", "Elias", "Maja", "Hugo", "Noor", "Ali", "Saga", "Leo", "Amina", "Oskar"}
	familyNames = []string{"Demosson", "Provsdotter", "Exempelberg", "Testlund", "Påhittsson", "Övningsström"}
	statuses    = []enrolmentv1.LabourMarketStatus{
		enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_EMPLOYED_AT_RISK, enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_NOTIFIED,
		enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_FURLOUGHED, enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_LAID_OFF,
		enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_JOB_SEEKER,
	}
	genders = []enrolmentv1.Gender{enrolmentv1.Gender_GENDER_WOMAN, enrolmentv1.Gender_GENDER_MAN, enrolmentv1.Gender_GENDER_WOMAN,
		enrolmentv1.Gender_GENDER_MAN, enrolmentv1.Gender_GENDER_NON_BINARY}
	levels = []enrolmentv1.EducationLevel{enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_0_2,
		enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_3_4, enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_5_8}
)

// DemoParticipants is how many synthetic participants the demo registers.
const DemoParticipants = 30

// Number is the demo's i-th personal identity number: generated (a valid
// date and check digit, serial numbers in the 900s), never taken from a
// real person.
func Number(i int) string {
	y, m, d := 1962+i, 1+i%12, 1+(i*7)%28
	ten := fmt.Sprintf("%02d%02d%02d%03d", y%100, m, d, 900+i)
	return fmt.Sprintf("%04d%02d%02d-%03d%d", y, m, d, 900+i, checkDigit(ten))
}

// checkDigit is the Luhn digit of a 10-digit number's first nine.
func checkDigit(nine string) int {
	sum := 0
	for i := range len(nine) {
		v := int(nine[i] - '0')
		if i%2 == 0 {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return (10 - sum%10) % 10
}

// Participant is the demo's i-th participant. Those still employed (at
// risk, notified, furloughed) work at one of the demo's companies.
func Participant(i int) *enrolmentv1.Participant {
	p := &enrolmentv1.Participant{
		PersonalIdentityNumber: Number(i), GivenName: givenNames[i%len(givenNames)], FamilyName: familyNames[i%len(familyNames)],
		Gender: genders[i%len(genders)], Municipality: goteborgsregionen[i%len(goteborgsregionen)],
		LabourMarketStatus: statuses[i%len(statuses)], EducationLevel: levels[i%len(levels)],
	}
	if i%len(statuses) < 3 {
		p.Employer = "companies/" + Companies[i%len(Companies)].ID
	}
	return p
}

// DemoOffering is the demo's offering of the demo call-off, and how many of
// the participants are enrolled on it (beyond its 16 seats they wait).
const (
	DemoOffering = "offerings/cnc-operatorer"
	demoCallOff  = "callOffs/cnc-operatorer-1"
	demoEnrolled = 20
)

// offering is the demo's open course: five days in a row (weekdays) from
// three weeks ahead, registration closing a week before.
func offering(now time.Time) *enrolmentv1.Offering {
	day := now.AddDate(0, 0, 21)
	var sessions []*enrolmentv1.Session
	for len(sessions) < 5 {
		if wd := day.Weekday(); wd != time.Saturday && wd != time.Sunday {
			sessions = append(sessions, &enrolmentv1.Session{
				Date:      &date.Date{Year: int32(day.Year()), Month: int32(day.Month()), Day: int32(day.Day())},
				StartTime: &timeofday.TimeOfDay{Hours: 8, Minutes: 30}, EndTime: &timeofday.TimeOfDay{Hours: 16},
				Location: "Mölndals industricentrum, verkstad 2",
			})
		}
		day = day.AddDate(0, 0, 1)
	}
	deadline := now.AddDate(0, 0, 14)
	return &enrolmentv1.Offering{
		CallOff: demoCallOff, Project: "projects/esf-2020-00312", Title: "CNC-operatörer med programmering",
		Sessions: sessions, Capacity: 16, Municipality: "1481", Language: "sv", Mode: enrolmentv1.Offering_MODE_CLASSROOM,
		RegistrationDeadline: &date.Date{Year: int32(deadline.Year()), Month: int32(deadline.Month()), Day: int32(deadline.Day())},
	}
}

// RunningOffering is the demo's course under way, from the same call-off:
// its first session is the day the demo is loaded (Swedish date), and
// demo-21 … demo-24 are enrolled on it, so its attendance can be recorded
// and its participants completed.
const (
	RunningOffering = "offerings/cnc-pagaende"
	runningFrom     = 21 // demo-21 …
	runningCount    = 4  // … demo-24
)

// runningOffering has five sessions, today and the four days after,
// registration closing today.
func runningOffering(now time.Time) *enrolmentv1.Offering {
	if loc, err := time.LoadLocation("Europe/Stockholm"); err == nil {
		now = now.In(loc)
	}
	dateOf := func(t time.Time) *date.Date {
		return &date.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}
	}
	var sessions []*enrolmentv1.Session
	for i := range 5 {
		sessions = append(sessions, &enrolmentv1.Session{
			Date: dateOf(now.AddDate(0, 0, i)), StartTime: &timeofday.TimeOfDay{Hours: 8, Minutes: 30}, EndTime: &timeofday.TimeOfDay{Hours: 16},
			Location: "Mölndals industricentrum, verkstad 1",
		})
	}
	return &enrolmentv1.Offering{
		CallOff: demoCallOff, Project: "projects/esf-2020-00312", Title: "CNC-operatörer med programmering, pågående omgång",
		Sessions: sessions, Capacity: 8, Municipality: "1481", Language: "sv", Mode: enrolmentv1.Offering_MODE_CLASSROOM,
		RegistrationDeadline: dateOf(now),
	}
}

// loadRunning creates the running offering, opens it, enrols its
// participants and starts it; on a store that has it, it leaves it be.
func loadRunning(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, now time.Time) error {
	_, err := c.CreateOffering(ctx, &enrolmentv1.CreateOfferingRequest{OfferingId: "cnc-pagaende", Offering: runningOffering(now)})
	if status.Code(err) == codes.AlreadyExists {
		return nil
	}
	if err != nil {
		return fmt.Errorf("running offering: %w", err)
	}
	if _, err := c.OpenOffering(ctx, &enrolmentv1.OpenOfferingRequest{Name: RunningOffering}); err != nil {
		return fmt.Errorf("opening the running offering: %w", err)
	}
	for i := runningFrom; i < runningFrom+runningCount; i++ {
		_, err := c.CreateEnrolment(ctx, &enrolmentv1.CreateEnrolmentRequest{Parent: RunningOffering, EnrolmentId: fmt.Sprintf("demo-%02d", i),
			Enrolment: &enrolmentv1.Enrolment{Participant: fmt.Sprintf("participants/demo-%02d", i)}})
		if err != nil {
			return fmt.Errorf("enrolment demo-%02d on the running offering: %w", i, err)
		}
	}
	if _, err := c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: RunningOffering}); err != nil {
		return fmt.Errorf("starting the running offering: %w", err)
	}
	return nil
}

// loadEnrolment creates the demo's projects, participants and the open
// offering of the demo call-off, with the first participants enrolled
// (16) and waitlisted (4), and the running one (loadRunning).
func loadEnrolment(ctx context.Context, conn grpc.ClientConnInterface, now time.Time) error {
	c := enrolmentv1.NewEnrolmentServiceClient(conn)
	for id, p := range Projects(now) {
		_, err := c.CreateProject(ctx, &enrolmentv1.CreateProjectRequest{ProjectId: id, Project: p})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("project %s: %w", id, err)
		}
	}
	for i := range DemoParticipants {
		_, err := c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{ParticipantId: fmt.Sprintf("demo-%02d", i+1), Participant: Participant(i)})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("participant demo-%02d: %w", i+1, err)
		}
	}
	_, err := c.CreateOffering(ctx, &enrolmentv1.CreateOfferingRequest{OfferingId: "cnc-operatorer", Offering: offering(now)})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("offering: %w", err)
	}
	o, err := c.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: DemoOffering})
	if err != nil {
		return err
	}
	if o.GetState() == enrolmentv1.Offering_STATE_PLANNED {
		if _, err := c.OpenOffering(ctx, &enrolmentv1.OpenOfferingRequest{Name: DemoOffering}); err != nil {
			return fmt.Errorf("opening the offering: %w", err)
		}
	}
	for i := range demoEnrolled {
		_, err := c.CreateEnrolment(ctx, &enrolmentv1.CreateEnrolmentRequest{Parent: DemoOffering, EnrolmentId: fmt.Sprintf("demo-%02d", i+1),
			Enrolment: &enrolmentv1.Enrolment{Participant: fmt.Sprintf("participants/demo-%02d", i+1)}})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("enrolment demo-%02d: %w", i+1, err)
		}
	}
	return loadRunning(ctx, c, now)
}
