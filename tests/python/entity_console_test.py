"""Drives the console's entity pages in headless Chromium (Debian's chromium +
chromedriver, through Selenium): sign in, open Entities, find the entity given, open
its page and read its timeline. Prints a JSON summary; exits non-zero on failure."""
import json
import sys

import chromium

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready

base, token, kind, entity, shots = sys.argv[1:6]

driver, wait = chromium.start()
summary = {}
try:
    driver.get(base + "/")
    wait.until(ready.visibility_of_element_located((By.ID, "token"))).send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#alerts tr")))
    driver.find_element(By.CSS_SELECTOR, "#nav a[data-page='entities']").click()
    row = wait.until(ready.presence_of_element_located(
        (By.CSS_SELECTOR, f"#entities tr[data-entity='{kind}/{entity}']")))
    cells = row.find_elements(By.TAG_NAME, "td")
    summary["first_row"] = driver.execute_script(
        "return document.querySelector('#entities tr[data-entity]').dataset.entity")
    summary["risk"] = float(cells[2].text)
    summary["alerts"] = int(cells[3].text)
    summary["incidents_cell"] = cells[4].text
    driver.save_screenshot(f"{shots}/entities.png")
    row.click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#e-timeline tr.e-alert")))
    summary["title"] = driver.find_element(By.ID, "e-title").text
    summary["timeline"] = driver.execute_script(
        "return [...document.querySelectorAll('#e-timeline tr')].map((row) => row.className)")
    summary["alert_links"] = driver.execute_script(
        "return [...document.querySelectorAll('#e-timeline tr.e-alert a')].map((a) => a.getAttribute('href'))")
    summary["incident_links"] = driver.execute_script(
        "return [...document.querySelectorAll('#e-timeline tr.e-risk-incident a')].map((a) => a.getAttribute('href'))")
    driver.save_screenshot(f"{shots}/entity.png")
    # The incident's page: its evidence is each contributing alert's risk.
    driver.find_element(By.CSS_SELECTOR, "#e-timeline tr.e-risk-incident a").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#a-evidence td[data-event] div.hint")))
    summary["incident_evidence"] = driver.execute_script(
        "return [...document.querySelectorAll('#a-evidence td[data-event]')].map((cell) => cell.firstChild.textContent)")
    driver.save_screenshot(f"{shots}/incident.png")
    print(json.dumps(summary))
finally:
    driver.quit()
