"""Drives the Cordon console in headless Chromium (Debian's chromium + chromedriver,
through Selenium): sign in, find the alert of an attack, open it, see its evidence,
approve the pending isolation, and wait for it to be delivered. Screenshots of the
main pages go to the folder given. Prints a JSON summary; exits non-zero on failure."""
import json
import sys
import time

import chromium

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready

base, token, rule, shots = sys.argv[1:5]

driver, wait = chromium.start()
summary = {}


def states_now():
    # Read in one go: the page re-renders the table after an approval.
    return driver.execute_script(
        "return [...document.querySelectorAll('#a-actions td.state')].map((cell) => cell.textContent)")


try:
    driver.get(base + "/")
    wait.until(ready.visibility_of_element_located((By.ID, "token"))).send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    row = wait.until(ready.presence_of_element_located(
        (By.XPATH, f"//tbody[@id='alerts']/tr[td[contains(., '{rule}')]]")))
    summary["queue_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#alerts tr[data-id]"))
    summary["alert_id"] = row.get_attribute("data-id")
    driver.save_screenshot(f"{shots}/alerts.png")
    row.click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#a-evidence tr td.mono")))
    summary["evidence_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#a-evidence tr"))
    # The evidence refs are filled in with what each stored event was about.
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#a-evidence td[data-event] div.hint")))
    summary["evidence_detail"] = driver.execute_script(
        "return document.querySelector('#a-evidence td[data-event]').firstChild.textContent")
    # ...and how it arrived: the producer that vouched for it, TLS, signature.
    summary["evidence_via"] = driver.execute_script(
        "return document.querySelector('#a-evidence td[data-via]').textContent")
    summary["title"] = driver.find_element(By.ID, "a-title").text
    approve = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "#a-actions button[data-do='approve']")))
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#a-timeline tr td")))
    summary["timeline_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#a-timeline tr"))
    driver.save_screenshot(f"{shots}/alert.png")
    approve.click()
    deadline = time.time() + 30
    while time.time() < deadline:
        states = states_now()
        if "succeeded" in states:
            break
        time.sleep(0.5)
        driver.refresh()
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#a-actions tr")))
    summary["action_states"] = states_now()
    driver.save_screenshot(f"{shots}/alert-approved.png")
    driver.get(base + "/#/rules")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#rules tr")))
    summary["rules"] = len(driver.find_elements(By.CSS_SELECTOR, "#rules tr"))
    # A rule that holds its events between evaluations says so beside its evaluations.
    summary["rule_cadence"] = driver.execute_script(
        "return [...document.querySelectorAll('#rules tr')].filter((row) => row.cells[0].textContent.startsWith('telemetry-gap'))"
        ".map((row) => row.cells[3].textContent).join('')")
    # A rule with an anchor says where it is matched.
    summary["rule_anchor"] = driver.execute_script(
        "return [...document.querySelectorAll('#rules tr')].filter((row) => row.cells[0].textContent.startsWith('activity-after-isolation'))"
        ".map((row) => row.cells[3].textContent).join('')")
    # What an evaluation costs, per rule: which rule to look at when the engine lags.
    summary["rule_costs"] = driver.execute_script(
        "return [...document.querySelectorAll('#rules tr')].map((row) => row.cells[3].textContent).join(' | ')")
    driver.save_screenshot(f"{shots}/rules.png")
    driver.get(base + "/#/actions")
    driver.find_element(By.CSS_SELECTOR, "#f-astate option[value='']").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#actions td.state")))
    driver.save_screenshot(f"{shots}/responses.png")
    driver.get(base + "/#/hunt")
    summary["hunt_sql"] = driver.find_element(By.ID, "sql").get_attribute("value")
    wait.until(ready.element_to_be_clickable((By.ID, "run"))).click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#hunt-table tbody tr")))
    summary["hunt_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#hunt-table tbody tr"))
    driver.save_screenshot(f"{shots}/hunt.png")
    driver.get(base + "/#/health")
    wait.until(ready.presence_of_element_located((By.XPATH, "//tbody[@id='health']/tr[td[contains(., 'wks-clock-ahead')]]")))
    summary["health"] = driver.execute_script(
        "return [...document.querySelectorAll('#health tr')].map((row) => [...row.cells].map((cell) => cell.textContent))")
    driver.save_screenshot(f"{shots}/health.png")
    summary["console_errors"] = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
finally:
    driver.quit()
print(json.dumps(summary))
