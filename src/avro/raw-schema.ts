/** The cold tier's raw record schema, as the AWS IoT SiteWise User Guide documents it. */
export const RAW_DATUM_SCHEMA = {
  type: 'record',
  name: 'RawDatum',
  namespace: 'amazon.aws.iot.sitewise.raw',
  fields: [
    { name: 'seriesId', type: 'string' },
    { name: 'timeInSeconds', type: 'long' },
    { name: 'offsetInNanos', type: 'long' },
    { name: 'quality', type: 'string' },
    { name: 'doubleValue', type: ['null', 'double'], default: null },
    { name: 'stringValue', type: ['null', 'string'], default: null },
    { name: 'integerValue', type: ['null', 'int'], default: null },
    { name: 'booleanValue', type: ['null', 'boolean'], default: null },
    { name: 'jsonValue', type: ['null', 'string'], default: null },
    { name: 'recordVersion', type: ['null', 'long'], default: null },
  ],
} as const;
