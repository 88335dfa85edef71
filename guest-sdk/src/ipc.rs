//! Arrow IPC framing between the job and the host.

use crate::Error;
use arrow_array::RecordBatch;
use arrow_ipc::{reader::StreamReader, writer::StreamWriter};
use arrow_schema::SchemaRef;

/// Encodes one batch as a self-contained IPC stream (schema, batch, end marker).
pub(crate) fn encode(batch: &RecordBatch) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Decodes the schema of a stream that carries no batches.
pub(crate) fn decode_schema(bytes: &[u8]) -> Result<SchemaRef, Error> {
    Ok(StreamReader::try_new(bytes, None)?.schema())
}

/// Decodes a stream the host sent with exactly one batch in it.
pub(crate) fn decode_one(bytes: &[u8]) -> Result<RecordBatch, Error> {
    let mut reader = StreamReader::try_new(bytes, None)?;
    match reader.next() {
        Some(batch) => Ok(batch?),
        None => Err(Error::Arrow("the host sent an empty batch frame".into())),
    }
}
