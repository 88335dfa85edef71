//! Deterministic synthetic datasets shaped like a domain's public data.
//!
//! The same seed and row count always give the same bytes, so tests and
//! benchmarks can rely on exact numbers.

use arrow::array::{ArrayRef, AsArray, Date32Builder, Float64Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use inland_policies::identifiers::{USCC_CHARSET, resident_id_check, uscc_check};
use parquet::arrow::ArrowWriter;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// Why writing a generated dataset failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Creating or writing the file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file being written.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Encoding the data failed.
    #[error("encoding {path}: {message}")]
    Encode {
        /// The file being written.
        path: String,
        /// What the encoder said.
        message: String,
    },
}

/// Districts with their administrative codes and relative sizes. Yanqing is
/// deliberately tiny, so that small-group suppression has a group to suppress.
pub const DISTRICTS: [(&str, &str, u32); 12] = [
    ("东城区", "110101", 70),
    ("西城区", "110102", 90),
    ("朝阳区", "110105", 260),
    ("丰台区", "110106", 160),
    ("石景山区", "110107", 45),
    ("海淀区", "110108", 240),
    ("门头沟区", "110109", 25),
    ("房山区", "110111", 95),
    ("通州区", "110112", 140),
    ("顺义区", "110113", 100),
    ("昌平区", "110114", 180),
    ("延庆区", "110119", 0),
];

/// Residents generated in the tiny district (延庆区), whatever the row count.
pub const TINY_DISTRICT_RESIDENTS: usize = 4;

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀", "霞",
    "平", "刚", "桂", "英", "华",
];
const SERVICES: [&str; 6] = ["社保", "医保", "公积金", "户籍", "教育", "养老"];
const INDUSTRIES: [&str; 8] = [
    "制造业",
    "批发零售",
    "信息技术",
    "建筑业",
    "金融业",
    "科研服务",
    "住宿餐饮",
    "交通运输",
];
const MOBILE_PREFIXES: [u32; 12] = [130, 131, 135, 136, 138, 139, 150, 152, 158, 186, 188, 199];

/// A small deterministic generator (splitmix64): stable across platforms and crate versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    fn district(&mut self) -> usize {
        let total: u32 = DISTRICTS.iter().map(|d| d.2).sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (i, d) in DISTRICTS.iter().enumerate() {
            if x < d.2 {
                return i;
            }
            x -= d.2;
        }
        0
    }
}

fn name(rng: &mut Rng) -> String {
    let mut s = String::from(rng.pick(&SURNAMES));
    let first: &str = rng.pick(&GIVEN);
    s.push_str(first);
    if rng.below(2) == 0 {
        let second: &str = rng.pick(&GIVEN);
        s.push_str(second);
    }
    s
}

/// The schema of the resident-services dataset.
pub fn residents_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("resident_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("mobile", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("age", DataType::Int64, false),
        Field::new("income", DataType::Float64, false),
        Field::new("service_type", DataType::Utf8, false),
    ]))
}

/// Residents who used public services: valid resident ID numbers, names,
/// mobile numbers, district, age, monthly income (CNY) and the service used.
pub fn residents(rows: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng(seed ^ 0x5245_5349_4445_4E54);
    let mut id = StringBuilder::new();
    let mut nm = StringBuilder::new();
    let mut mobile = StringBuilder::new();
    let mut district = StringBuilder::new();
    let mut age = Int64Builder::new();
    let mut income = Float64Builder::new();
    let mut service = StringBuilder::new();
    let tiny = DISTRICTS.len() - 1;
    let mut sequences = std::collections::HashMap::new();
    for row in 0..rows {
        let d = if row < TINY_DISTRICT_RESIDENTS.min(rows) {
            tiny
        } else {
            rng.district()
        };
        let a = 18 + rng.below(70) as i64;
        let (month, mut day) = (1 + rng.below(12), 1 + rng.below(28));
        // Like real numbers, each (region, birth date) has its own sequence,
        // so no two residents share an ID; a full day spills into the next.
        let seq = loop {
            let n = sequences.entry((d, a, month, day)).or_insert(0u16);
            if *n < 1000 {
                *n += 1;
                break *n - 1;
            }
            day = day % 28 + 1;
        };
        let body = format!("{}{:04}{month:02}{day:02}{seq:03}", DISTRICTS[d].1, 2026 - a);
        let check = resident_id_check(&body).unwrap_or('0');
        id.append_value(format!("{body}{check}"));
        nm.append_value(name(&mut rng));
        mobile.append_value(format!("{}{:08}", rng.pick(&MOBILE_PREFIXES), rng.below(100_000_000)));
        district.append_value(DISTRICTS[d].0);
        age.append_value(a);
        // Skewed like real incomes: most modest, a few large.
        let base = 2_500.0 + 9_000.0 * rng.unit().powi(3) + 1_500.0 * rng.unit();
        income.append_value((base * 100.0).round() / 100.0);
        service.append_value(rng.pick(&SERVICES));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(nm.finish()),
        Arc::new(mobile.finish()),
        Arc::new(district.finish()),
        Arc::new(age.finish()),
        Arc::new(income.finish()),
        Arc::new(service.finish()),
    ];
    RecordBatch::try_new(residents_schema(), columns).unwrap_or_else(|e| unreachable!("schema matches builders: {e}"))
}

/// The schema of the service-records dataset.
pub fn services_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("resident_id", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("service_type", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
    ]))
}

/// Service records of `residents` (a batch from [`residents`]): `records`
/// rows, each for a resident drawn at random, so that a person has several
/// records in no particular order (the common shape of public data:
/// services, payments, visits), with the resident's district, a service and
/// an amount paid (CNY).
pub fn services(residents: &RecordBatch, records: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng(seed ^ 0x5345_5256_4943_4553);
    let text = |name: &str| residents.column_by_name(name).and_then(|c| c.as_string_opt::<i32>());
    let (Some(ids), Some(districts)) = (text("resident_id"), text("district")) else {
        unreachable!("a residents batch has resident_id and district");
    };
    let mut id = StringBuilder::new();
    let mut district = StringBuilder::new();
    let mut service = StringBuilder::new();
    let mut amount = Float64Builder::new();
    let people = residents.num_rows().max(1) as u64;
    for _ in 0..records {
        let who = rng.below(people) as usize;
        id.append_value(ids.value(who));
        district.append_value(districts.value(who));
        service.append_value(rng.pick(&SERVICES));
        let paid = 20.0 + 480.0 * rng.unit().powi(2);
        amount.append_value((paid * 100.0).round() / 100.0);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(district.finish()),
        Arc::new(service.finish()),
        Arc::new(amount.finish()),
    ];
    RecordBatch::try_new(services_schema(), columns).unwrap_or_else(|e| unreachable!("schema matches builders: {e}"))
}

/// The schema of the enterprise registry.
pub fn enterprises_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("industry", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("registered_capital", DataType::Float64, false),
        Field::new("employees", DataType::Int64, false),
        Field::new("founded", DataType::Date32, false),
    ]))
}

/// An enterprise registry: valid unified social credit codes, names,
/// industry, district, registered capital (10k CNY), employees, founding date.
pub fn enterprises(rows: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng(seed ^ 0x454E_5445_5250_5249);
    let charset: Vec<char> = USCC_CHARSET.chars().collect();
    let mut uscc = StringBuilder::new();
    let mut nm = StringBuilder::new();
    let mut industry = StringBuilder::new();
    let mut district = StringBuilder::new();
    let mut capital = Float64Builder::new();
    let mut employees = Int64Builder::new();
    let mut founded = Date32Builder::new();
    for _ in 0..rows {
        let d = rng.district();
        let org: String = (0..9).map(|_| rng.pick(&charset)).collect();
        let body = format!("91{}{org}", DISTRICTS[d].1);
        let check = uscc_check(&body).unwrap_or('0');
        uscc.append_value(format!("{body}{check}"));
        let ind = rng.pick(&INDUSTRIES);
        nm.append_value(format!("北京{}{}有限公司", name(&mut rng), ind));
        industry.append_value(ind);
        district.append_value(DISTRICTS[d].0);
        capital.append_value((10.0 + 5_000.0 * rng.unit().powi(4)).round());
        employees.append_value(1 + (2_000.0 * rng.unit().powi(5)) as i64);
        // Days since 1970-01-01: founded between 1990 and 2025.
        founded.append_value(7_305 + rng.below(12_800) as i32);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(uscc.finish()),
        Arc::new(nm.finish()),
        Arc::new(industry.finish()),
        Arc::new(district.finish()),
        Arc::new(capital.finish()),
        Arc::new(employees.finish()),
        Arc::new(founded.finish()),
    ];
    RecordBatch::try_new(enterprises_schema(), columns).unwrap_or_else(|e| unreachable!("schema matches builders: {e}"))
}

/// Writes a batch as a Parquet file.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), Error> {
    let shown = path.display().to_string();
    let file = File::create(path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    let encode = |e: parquet::errors::ParquetError| Error::Encode {
        path: shown.clone(),
        message: e.to_string(),
    };
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).map_err(encode)?;
    writer.write(batch).map_err(encode)?;
    writer.close().map_err(encode)?;
    Ok(())
}

/// Writes both example datasets (`residents.parquet`, `enterprises.parquet`) into `dir`.
pub fn write_examples(dir: &Path, rows: usize, seed: u64) -> Result<(), Error> {
    write_parquet(&dir.join("residents.parquet"), &residents(rows, seed))?;
    write_parquet(&dir.join("enterprises.parquet"), &enterprises(rows, seed))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use inland_policies::identifiers::{is_mobile, is_resident_id, is_uscc};

    #[test]
    fn generated_identifiers_are_valid() {
        let r = residents(2_000, 7);
        let ids = r.column(0).as_string::<i32>();
        let mobiles = r.column(2).as_string::<i32>();
        assert!((0..ids.len()).all(|i| is_resident_id(ids.value(i))));
        assert!((0..mobiles.len()).all(|i| is_mobile(mobiles.value(i))));
        let e = enterprises(2_000, 7);
        let codes = e.column(0).as_string::<i32>();
        assert!((0..codes.len()).all(|i| is_uscc(codes.value(i))));
    }

    #[test]
    fn no_two_residents_or_enterprises_share_an_identifier() {
        let r = residents(200_000, 7);
        let ids = r.column(0).as_string::<i32>();
        let distinct: std::collections::HashSet<&str> = ids.iter().flatten().collect();
        assert_eq!(distinct.len(), ids.len());
        let e = enterprises(200_000, 7);
        let codes = e.column(0).as_string::<i32>();
        let distinct: std::collections::HashSet<&str> = codes.iter().flatten().collect();
        assert_eq!(distinct.len(), codes.len());
    }

    #[test]
    fn same_seed_same_data_and_the_tiny_district_exists() {
        assert_eq!(residents(500, 1), residents(500, 1));
        assert_ne!(residents(500, 1), residents(500, 2));
        let r = residents(500, 1);
        let district = r.column(3).as_string::<i32>();
        let tiny = (0..district.len()).filter(|&i| district.value(i) == "延庆区").count();
        assert_eq!(tiny, TINY_DISTRICT_RESIDENTS);
    }

    /// Each record belongs to a generated resident and carries that
    /// resident's district; people have several records, and not in order.
    #[test]
    fn service_records_belong_to_residents_several_each() {
        let r = residents(1_000, 7);
        let s = services(&r, 3_000, 7);
        assert_eq!(s.num_rows(), 3_000);
        let district_of: std::collections::HashMap<&str, &str> = r
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .zip(r.column(3).as_string::<i32>().iter().flatten())
            .collect();
        let (ids, districts) = (s.column(0).as_string::<i32>(), s.column(1).as_string::<i32>());
        assert!((0..s.num_rows()).all(|i| district_of.get(ids.value(i)) == Some(&districts.value(i))));
        let people: std::collections::HashSet<&str> = ids.iter().flatten().collect();
        assert!(people.len() > 800 && people.len() < 1_000, "{} people", people.len());
        assert!((1..s.num_rows()).any(|i| ids.value(i) < ids.value(i - 1)));
    }
}
