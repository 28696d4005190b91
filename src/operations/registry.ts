import {
  backupDownloadOperation,
  backupOperation,
  backupsOperation,
  restoreOperation,
} from "./backups.js";
import { eventsOperation } from "./events.js";
import { createOperation } from "./instance-create.js";
import {
  destroyOperation,
  restartOperation,
  resumeOperation,
  startOperation,
  stopOperation,
  suspendOperation,
} from "./instance-lifecycle.js";
import { listOperation, showOperation } from "./instance-read.js";
import { setOperation } from "./instance-set.js";
import { hostAddOperation, hostRemoveOperation } from "./hosts.js";
import { logsOperation } from "./logs.js";
import { modelListOperation, modelPruneOperation, modelShowOperation } from "./models.js";
import { doctorOperation, monitorOperation, statusOperation } from "./system.js";
import { tokenCreateOperation, tokenListOperation, tokenRevokeOperation } from "./tokens.js";
import { tlsImportOperation, tlsIssueOperation, tlsListOperation } from "./tls.js";
import { rollbackOperation, upgradeOperation } from "./upgrades.js";
import type { Operation } from "./types.js";

/** Every operation of the API, in the order the OpenAPI document lists them. */
export const OPERATIONS: readonly Operation[] = [
  listOperation,
  showOperation,
  createOperation,
  startOperation,
  stopOperation,
  restartOperation,
  suspendOperation,
  resumeOperation,
  setOperation,
  hostAddOperation,
  hostRemoveOperation,
  tlsImportOperation,
  tlsIssueOperation,
  tlsListOperation,
  destroyOperation,
  logsOperation,
  backupOperation,
  backupsOperation,
  backupDownloadOperation,
  restoreOperation,
  upgradeOperation,
  rollbackOperation,
  eventsOperation,
  modelListOperation,
  modelShowOperation,
  modelPruneOperation,
  statusOperation,
  monitorOperation,
  doctorOperation,
  tokenCreateOperation,
  tokenListOperation,
  tokenRevokeOperation,
];

export function findOperation(id: string): Operation | undefined {
  return OPERATIONS.find((op) => op.id === id);
}
