// The AWS SDK's modules, loaded with require() rather than import. They are CommonJS, and Node 20
// imports CommonJS from ESM by parsing each file for its export names (cjs-module-lexer) and, for
// a package imported that way, sends every nested require through the ESM loader as well: the
// SDK cost about twice the CPU to load by import (~120 ms against ~60 ms here), a large part of a
// run that has nothing to do. Types still come from the packages (type imports are erased).
import { createRequire } from 'node:module';
import type * as S3 from '@aws-sdk/client-s3';
import type * as Storage from '@aws-sdk/lib-storage';
import type * as Http from '@smithy/node-http-handler';

const require = createRequire(import.meta.url);
const s3 = require('@aws-sdk/client-s3') as typeof S3;

export const S3Client = s3.S3Client;
export type S3Client = S3.S3Client;
export const AbortMultipartUploadCommand = s3.AbortMultipartUploadCommand;
export const CreateMultipartUploadCommand = s3.CreateMultipartUploadCommand;
export const DeleteObjectsCommand = s3.DeleteObjectsCommand;
export const GetObjectCommand = s3.GetObjectCommand;
export const HeadBucketCommand = s3.HeadBucketCommand;
export const HeadObjectCommand = s3.HeadObjectCommand;
export const ListMultipartUploadsCommand = s3.ListMultipartUploadsCommand;
export const ListObjectsV2Command = s3.ListObjectsV2Command;
export const PutObjectCommand = s3.PutObjectCommand;

export const NodeHttpHandler = (require('@smithy/node-http-handler') as typeof Http).NodeHttpHandler;

// lib-storage (multipart uploads) costs ~1 ms more once the client is loaded: not worth a lazy path.
export const Upload = (require('@aws-sdk/lib-storage') as typeof Storage).Upload;
