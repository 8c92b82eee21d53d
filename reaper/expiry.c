#include "expiry.h"

#include "events.h"
#include "log.h"
#include "metrics.h"
#include "track.h"

#define EXPIRY_ROUNDS 8	/* rounds per turn: renewals and the pass come between */

/* The calendar's size and fullness into the metrics, as changes. */
static void
report_size(struct daemon *d, unsigned long long checks, unsigned long long removed)
{
	long long n = (long long)d->rec.cal.n;
	unsigned long long refused = d->rec.cal.refused - d->cal_refused_seen;

	metrics_calendar(n - d->cal_reported, checks, removed, refused);
	d->cal_reported = n;
	d->cal_refused_seen = d->rec.cal.refused;
}

int64_t
expiry_next_ms(const struct daemon *d)
{
	int64_t due = calendar_next_due(&d->rec.cal);

	if (!d->rec.tracking || due == INT64_MAX ||
	    (d->role != ROLE_LEADER && d->role != ROLE_SHADOW))
		return INT64_MAX;
	return due > d->cal_last + EXPIRY_ROUND_MS ? due : d->cal_last + EXPIRY_ROUND_MS;
}

enum reconcile_result
expiry_step(struct daemon *d, int64_t now)
{
	enum reconcile_result res = RECONCILE_OK;
	struct track_round tr;
	int rounds = 0;

	if (expiry_next_ms(d) > now)
		return RECONCILE_OK;
	d->cal_last = now;
	while (rounds++ < EXPIRY_ROUNDS && calendar_next_due(&d->rec.cal) <= now) {
		res = (enum reconcile_result)track_check(&d->rec, d->conn, now, &tr);
		d->cal_removed += tr.removed;
		d->cal_checked += tr.checked;
		report_size(d, tr.checked, tr.removed);
		if (tr.checked)
			log_debug("expiry calendar: checked %llu, gone %llu, removed %llu, "
			    "still due before the next pass %llu", tr.checked, tr.gone,
			    tr.removed, tr.kept);
		if (res == RECONCILE_GUARD) {
			/* Those users are gone from the calendar: the pass judges them. */
			events_guard_refused(d, &d->cal_refusals, "expiry calendar", "rounds");
			res = RECONCILE_OK;
			continue;
		}
		if (res != RECONCILE_OK)
			break;
		if (tr.gone)
			events_guard_cleared(&d->cal_refusals, "expiry calendar", "rounds");
	}
	return res;
}

void
expiry_pass_done(struct daemon *d, const struct reconcile_stats *st)
{
	const struct calendar *c = &d->rec.cal;
	unsigned long long refused = c->refused - d->cal_refused_logged;

	d->cal_refused_logged = c->refused;
	report_size(d, 0, 0);
	if (refused && !d->cal_full) {
		log_warnx("expiry calendar full: it tracks %zu sets (reaper.track_max); %llu "
		    "more close to expiry are left to the pass, which finds them up to "
		    "reaper.interval later. Raise reaper.track_max to track them", c->n, refused);
		d->cal_full = 1;
		metrics_calendar_full(1);
	} else if (!refused && d->cal_full && st->seconds > 0) {
		log_info("expiry calendar: room again, tracking every set close to expiry");
		d->cal_full = 0;
		metrics_calendar_full(-1);
	}
	log_info("since the last pass: %llu removed by the pass, %llu at expiry by the "
	    "calendar (%llu checks); tracking %zu sets (%zu KB)", st->removed, d->cal_removed,
	    d->cal_checked, c->n, calendar_bytes(c) / 1024);
	d->cal_removed = d->cal_checked = 0;
}

void
expiry_clear(struct daemon *d)
{
	calendar_clear(&d->rec.cal);
	report_size(d, 0, 0);
	d->cal_refused_logged = d->rec.cal.refused;
	if (d->cal_full)
		metrics_calendar_full(-1);
	d->cal_full = 0;
	d->cal_refusals = 0;
}
