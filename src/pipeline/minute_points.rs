//! The one-minute metric points of a flush, computed from the memtable's metric columns:
//! points grouped by series and minute without decoding them, aggregated by
//! [`crate::rollup::metric_minutes::minute_point`], only each group's last point decoded.

use arrow::array::{Array, AsArray, Float64Array, ListArray, StringArray, UInt64Array};
use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt64Type};
use arrow::record_batch::RecordBatch;

use crate::model::MetricPoint;
use crate::rollup::metric_minutes::{minute_point, MinuteMetric, Sample};
use crate::rollup::MINUTE;
use crate::store::columns::Columns;
use crate::store::{StoreError, StoredRow};

/// What makes points one series: name, service, instance, attribute text (canonical JSON,
/// as stored), kind and temporality.
type SeriesKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

/// The columns of one batch of raw points that grouping and aggregation read.
struct PointColumns<'a> {
    time: &'a arrow::array::TimestampNanosecondArray,
    start: &'a arrow::array::TimestampNanosecondArray,
    name: &'a StringArray,
    service: &'a StringArray,
    instance: &'a StringArray,
    attributes: &'a StringArray,
    kind: &'a StringArray,
    temporality: &'a StringArray,
    value: &'a Float64Array,
    count: &'a UInt64Array,
    sum: &'a Float64Array,
    bucket_counts: &'a ListArray,
    explicit_bounds: &'a ListArray,
}

impl<'a> PointColumns<'a> {
    fn new(batch: &'a RecordBatch) -> Result<Self, StoreError> {
        let cols = Columns::new(batch);
        Ok(Self {
            time: cols.primitive::<TimestampNanosecondType>("time")?,
            start: cols.primitive::<TimestampNanosecondType>("start_time")?,
            name: cols.str("name")?,
            service: cols.str("service_name")?,
            instance: cols.str("service_instance_id")?,
            attributes: cols.str("attributes")?,
            kind: cols.str("kind")?,
            temporality: cols.str("temporality")?,
            value: cols.primitive::<Float64Type>("value")?,
            count: cols.primitive::<UInt64Type>("count")?,
            sum: cols.primitive::<Float64Type>("sum")?,
            bucket_counts: cols.list("bucket_counts")?,
            explicit_bounds: cols.list("explicit_bounds")?,
        })
    }

    fn series(&self, i: usize) -> SeriesKey<'a> {
        (
            self.name.value(i),
            self.service.value(i),
            self.instance.value(i),
            self.attributes.value(i),
            self.kind.value(i),
            self.temporality.value(i),
        )
    }

    fn sample(&self, i: usize) -> Result<Sample<'a>, StoreError> {
        let opt = |a: &Float64Array| a.is_valid(i).then(|| a.value(i));
        Ok(Sample {
            start: self.start.value(i),
            value: opt(self.value),
            count: self.count.is_valid(i).then(|| self.count.value(i)),
            sum: opt(self.sum),
            bucket_counts: list_values::<UInt64Type>(self.bucket_counts, i)?,
            explicit_bounds: list_values::<Float64Type>(self.explicit_bounds, i)?,
        })
    }
}

/// The items of list `i`, borrowed from the list's child array.
fn list_values<T: arrow::datatypes::ArrowPrimitiveType>(
    list: &ListArray,
    i: usize,
) -> Result<&[T::Native], StoreError> {
    let items = list
        .values()
        .as_primitive_opt::<T>()
        .ok_or_else(|| StoreError::Schema("metric list column of another item type".into()))?
        .values();
    let offsets = list.value_offsets();
    let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
    items
        .get(from..to)
        .ok_or_else(|| StoreError::Schema("metric list offsets out of range".into()))
}

/// Downsamples raw points (batches of the metric files' schema) to one point per series and
/// minute, in series order. Points are grouped and aggregated from their columns; only the
/// last point of each group is decoded (the minute point starts as a copy of it).
pub fn downsample(batches: &[RecordBatch]) -> Result<Vec<MinuteMetric>, StoreError> {
    let columns = batches
        .iter()
        .map(PointColumns::new)
        .collect::<Result<Vec<_>, _>>()?;
    // Grouped by hash (one hash per point, not a tree walk comparing strings), then put in
    // series order.
    let mut groups: foldhash::HashMap<(SeriesKey<'_>, i64), Vec<(usize, usize)>> =
        foldhash::HashMap::default();
    for (b, cols) in columns.iter().enumerate() {
        for i in 0..cols.time.len() {
            let minute = cols.time.value(i).div_euclid(MINUTE);
            groups
                .entry((cols.series(i), minute))
                .or_default()
                .push((b, i));
        }
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (_, mut group) in groups {
        // Stable: points of one time keep their arrival order.
        group.sort_by_key(|&(b, i)| columns[b].time.value(i));
        let Some(&(b, i)) = group.last() else {
            continue;
        };
        let mut decoded = Vec::with_capacity(1);
        MetricPoint::from_batch(&batches[b].slice(i, 1), &mut |_| true, &mut decoded)?;
        let Some(last) = decoded.pop() else {
            continue;
        };
        let samples = group
            .iter()
            .map(|&(b, i)| columns[b].sample(i))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(point) = minute_point(last, &samples) {
            out.push(MinuteMetric(point));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MetricKind;
    use std::sync::Arc;

    fn point(kind: MetricKind, temporality: &str, t: i64, v: f64) -> MetricPoint {
        MetricPoint {
            name: "m".into(),
            description: String::new(),
            unit: String::new(),
            kind,
            temporality: temporality.into(),
            is_monotonic: kind == MetricKind::Sum,
            time_unix_nano: t,
            start_time_unix_nano: 0,
            value: Some(v),
            count: None,
            sum: None,
            min: None,
            max: None,
            bucket_counts: Vec::new(),
            explicit_bounds: Vec::new(),
            distribution: None,
            attributes: Default::default(),
            resource: Arc::new(Default::default()),
            scope_name: String::new(),
        }
    }

    #[test]
    fn gauges_average_deltas_add_cumulatives_keep_last() {
        let s = 1_000_000_000;
        let raw = [
            point(MetricKind::Gauge, "", s, 10.0),
            point(MetricKind::Gauge, "", 2 * s, f64::NAN),
            point(MetricKind::Gauge, "", 3 * s, 20.0),
            point(MetricKind::Sum, "delta", s, 2.0),
            point(MetricKind::Sum, "delta", 2 * s, 3.0),
            point(MetricKind::Sum, "cumulative", s, 100.0),
            point(MetricKind::Sum, "cumulative", 2 * s, 107.0),
            point(MetricKind::Gauge, "", 61 * s, 5.0),
        ];
        let refs: Vec<&MetricPoint> = raw.iter().collect();
        let out = downsample(&[MetricPoint::to_batch(&refs).unwrap()]).unwrap();
        assert_eq!(out.len(), 4);
        let find = |kind: MetricKind, temporality: &str, minute: i64| {
            out.iter()
                .find(|m| {
                    m.0.kind == kind
                        && m.0.temporality == temporality
                        && m.0.time_unix_nano / (60 * s) == minute
                })
                .unwrap()
                .0
                .clone()
        };
        let g = find(MetricKind::Gauge, "", 0);
        assert_eq!(
            (g.value, g.min, g.max, g.count),
            (Some(15.0), Some(10.0), Some(20.0), Some(2))
        );
        assert_eq!(find(MetricKind::Sum, "delta", 0).value, Some(5.0));
        let c = find(MetricKind::Sum, "cumulative", 0);
        assert_eq!(
            (c.value, c.min, c.sum),
            (Some(107.0), Some(100.0), Some(7.0))
        );
        assert_eq!(find(MetricKind::Gauge, "", 1).value, Some(5.0));
    }

    #[test]
    fn a_delta_histogram_whose_last_point_has_extra_buckets_sums_by_its_bounds() {
        let s = 1_000_000_000;
        let histogram = |t: i64, counts: Vec<u64>| MetricPoint {
            kind: MetricKind::Histogram,
            value: None,
            count: Some(counts.iter().sum()),
            sum: Some(1.0),
            bucket_counts: counts,
            explicit_bounds: vec![1.0, 5.0],
            ..point(MetricKind::Histogram, "delta", t, 0.0)
        };
        // The last point (the minute point's start) is malformed: four buckets for two bounds.
        let raw = [
            histogram(s, vec![1, 2, 3]),
            histogram(2 * s, vec![4, 5, 6]),
            histogram(3 * s, vec![7, 8, 9, 10]),
        ];
        let refs: Vec<&MetricPoint> = raw.iter().collect();
        let out = downsample(&[MetricPoint::to_batch(&refs).unwrap()]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.bucket_counts, vec![5, 7, 9]);
        assert_eq!(out[0].0.count, Some(21));
    }
}
